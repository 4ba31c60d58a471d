import EnvNetMPI
import EnvNetModel
import Foundation

/// `mpirun -np N envnet-mpi allreduce-benchmark [--rounds R] [--hidden-units H]`: times the sum
/// over the ranks of the full network's gradients (48.6 M floats, 194 MB for EnvNet with 50
/// classes), in the buckets training uses, and prints the mean and the best round.
enum AllreduceBenchmark {
    static func main(_ arguments: [String], communicator: MPICommunicator) -> Int32 {
        var rounds = 5, hiddenUnits = 4096
        var index = 0
        while index + 1 < arguments.count {
            switch arguments[index] {
            case "--rounds": rounds = max(1, Int(arguments[index + 1]) ?? rounds)
            case "--hidden-units": hiddenUnits = max(1, Int(arguments[index + 1]) ?? hiddenUnits)
            default: break
            }
            index += 2
        }
        let network = EnvNet(configuration: EnvNetConfiguration(classCount: 50, hiddenUnits: hiddenUnits), seed: 0)
        let parameters = network.parameters()
        let count = parameters.reduce(0) { $0 + $1.count }
        // The buckets of training, last layer first.
        let counts = parameters.reversed().map(\.count)
        let buckets = DataParallelism.bucketRanges(elementCounts: counts, bucketBytes: DataParallelism.defaultBucketBytes)
            .map { counts[$0].reduce(0, +) }
        var times: [Double] = []
        do {
            for _ in 0..<rounds + 1 {
                let started = DispatchTime.now().uptimeNanoseconds
                let pending = try buckets.map { try communicator.startAllreduceSum([Float](repeating: 1, count: $0)) }
                for sums in pending { _ = try sums.finish() }
                times.append(Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
            }
        } catch {
            FileHandle.standardError.write(Data("envnet-mpi allreduce-benchmark: \(error)\n".utf8))
            return 1
        }
        times.removeFirst()  // the first round sets up the connections
        if communicator.rank == 0 {
            let mean = times.reduce(0, +) / Double(times.count)
            print(String(format: "allreduce of %d floats (%.1f MB) in %d buckets over %d ranks: mean %.3f s, best %.3f s (%d rounds); %.2f GB/s of gradient",
                         count, Double(4 * count) / 1e6, buckets.count, communicator.size, mean, times.min()!, times.count, Double(4 * count) / mean / 1e9))
        }
        return 0
    }
}
