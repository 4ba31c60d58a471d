import EnvNetModel
import Foundation

/// `envnet-mpi compare A B [--tolerance T]`: the relative difference of the parameters, as one
/// vector, ‖a − b‖ / ‖b‖ (weights and biases; running statistics are listed, not judged), and
/// each tensor's own, the largest first; exits 1 when the vector's is over T (1e-5) or a tensor is
/// missing. The check that N ranks trained as one process did (Docs/distributed.md).
///
/// Why the whole vector: training amplifies float rounding. After a few steps the small BatchNorm
/// shifts of two runs that differ only in summation order (1 thread against 2, in one process)
/// differ by 1e-5 to 1e-3 of their own norm, as ReLU and max-pool decisions flip; the weights,
/// and the parameters as a whole, stay within 1e-6.
enum ModelComparison {
    static func main(_ arguments: [String]) -> Int32 {
        var paths: [String] = [], tolerance = 1e-5
        var index = 0
        while index < arguments.count {
            if arguments[index] == "--tolerance", index + 1 < arguments.count, let value = Double(arguments[index + 1]), value >= 0 {
                tolerance = value
                index += 2
            } else if arguments[index].hasPrefix("-") {
                FileHandle.standardError.write(Data("envnet-mpi compare: unknown or incomplete option \(arguments[index])\n".utf8))
                return 64
            } else {
                paths.append(arguments[index])
                index += 1
            }
        }
        guard paths.count == 2 else {
            FileHandle.standardError.write(Data("usage: envnet-mpi compare <a.safetensors> <b.safetensors> [--tolerance T]\n".utf8))
            return 64
        }
        do {
            let a = try SafeTensors.read(from: URL(fileURLWithPath: paths[0])).tensors
            let b = try SafeTensors.read(from: URL(fileURLWithPath: paths[1])).tensors
            var rows: [(key: String, relative: Double)] = []
            var squaredDifference: Double = 0, squaredNorm: Double = 0
            var featureStatisticsDiffer = false
            for key in Set(a.keys).union(b.keys).sorted() {
                guard let x = a[key], let y = b[key], x.shape == y.shape else {
                    print("\(key): only in one file, or of another shape")
                    return 1
                }
                let norm = y.scalars.reduce(0) { $0 + Double($1) * Double($1) }
                let difference = zip(x.scalars, y.scalars).reduce(0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
                // Running and feature statistics are judged apart: logmel.segment_count alone (about
                // 14 000 for ESC-50) would outweigh every weight in the norm.
                let isStatistic = key.hasSuffix("running_mean") || key.hasSuffix("running_var") || key.hasPrefix("logmel.")
                let keyRelative = (difference / max(norm, 1e-24)).squareRoot()
                rows.append((key + (isStatistic ? " (statistic)" : ""), keyRelative))
                // ... but the feature statistics must agree by themselves: every member fits them alike.
                if key.hasPrefix("logmel."), keyRelative > tolerance { featureStatisticsDiffer = true }
                if !isStatistic {
                    squaredDifference += difference
                    squaredNorm += norm
                }
            }
            rows.sort { $0.relative > $1.relative }
            for row in rows.prefix(6) { print(String(format: "  %-32@ %.3e of its norm", row.key, row.relative)) }
            let relative = (squaredDifference / max(squaredNorm, 1e-24)).squareRoot()
            let same = relative <= tolerance && !featureStatisticsDiffer
            print(String(format: "parameters: relative difference %.3e (tolerance %.0e), %d tensors: %@%@", relative, tolerance, rows.count,
                         same ? "same" : "DIFFERENT", featureStatisticsDiffer ? " (the log-mel feature statistics differ)" : ""))
            return same ? 0 : 1
        } catch {
            FileHandle.standardError.write(Data("envnet-mpi compare: \(error)\n".utf8))
            return 1
        }
    }
}
