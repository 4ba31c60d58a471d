import Foundation

/// The accuracies of a cross-validation run (one per test fold) with their mean and sample
/// standard deviation, as papers report them ("70.8 ± 1.4 %").
public struct CrossValidationSummary: Sendable, Hashable, Codable, CustomStringConvertible {
    /// One fold's result.
    public struct Fold: Sendable, Hashable, Codable {
        /// The held-out (test) fold number.
        public var fold: Int
        /// The clip accuracy on that fold, in [0, 1].
        public var accuracy: Double
        /// The number of test clips, when known.
        public var clipCount: Int?

        /// Creates a fold result.
        ///
        /// - Parameters:
        ///   - fold: The test fold number.
        ///   - accuracy: The clip accuracy in [0, 1].
        ///   - clipCount: The number of test clips, when known.
        public init(fold: Int, accuracy: Double, clipCount: Int? = nil) {
            self.fold = fold
            self.accuracy = accuracy
            self.clipCount = clipCount
        }
    }

    /// The folds, in the order given.
    public let folds: [Fold]
    /// The mean accuracy over the folds.
    public let mean: Double
    /// The sample standard deviation (divisor n - 1) of the fold accuracies; 0 for a single fold.
    public let standardDeviation: Double

    /// Summarizes fold results.
    ///
    /// - Parameter folds: At least one fold, with distinct fold numbers and accuracies in [0, 1].
    /// - Throws: ``EnvNetError/invalidInput(_:)`` for no folds, a repeated fold number or an
    ///   accuracy that is not a number in [0, 1].
    public init(folds: [Fold]) throws {
        guard !folds.isEmpty else { throw EnvNetError.invalidInput("cross-validation summary needs at least one fold") }
        var seen = Set<Int>()
        for fold in folds {
            guard seen.insert(fold.fold).inserted else { throw EnvNetError.invalidInput("fold \(fold.fold) is listed twice") }
            guard fold.accuracy.isFinite, (0...1).contains(fold.accuracy) else {
                throw EnvNetError.invalidInput("fold \(fold.fold): accuracy \(fold.accuracy) is not in [0, 1]")
            }
            if let count = fold.clipCount, count < 0 {
                throw EnvNetError.invalidInput("fold \(fold.fold): negative clip count \(count)")
            }
        }
        let count = Double(folds.count)
        let mean = folds.reduce(0) { $0 + $1.accuracy } / count
        let squares = folds.reduce(0) { $0 + ($1.accuracy - mean) * ($1.accuracy - mean) }
        self.folds = folds
        self.mean = mean
        self.standardDeviation = folds.count > 1 ? (squares / (count - 1)).squareRoot() : 0
    }

    /// Summarizes accuracies of folds numbered 1, 2, … in order.
    ///
    /// - Parameter accuracies: One accuracy in [0, 1] per fold.
    /// - Throws: ``EnvNetError/invalidInput(_:)`` as ``init(folds:)``.
    public init(accuracies: [Double]) throws {
        try self.init(folds: accuracies.enumerated().map { Fold(fold: $0.offset + 1, accuracy: $0.element) })
    }

    /// Summarizes one evaluation report per fold.
    ///
    /// - Parameter reports: Reports keyed by test fold number.
    /// - Throws: ``EnvNetError/invalidInput(_:)`` for no reports.
    public init(reports: [Int: EvaluationReport]) throws {
        try self.init(folds: reports.keys.sorted().map { Fold(fold: $0, accuracy: reports[$0]!.accuracy, clipCount: reports[$0]!.clipCount) })
    }

    /// The lowest fold accuracy.
    public var minimum: Double { folds.map(\.accuracy).min() ?? 0 }
    /// The highest fold accuracy.
    public var maximum: Double { folds.map(\.accuracy).max() ?? 0 }

    /// For example `accuracy 70.80 % ± 1.40 % (sample std over 5 folds: 1 69.5 %, 2 72.0 %, …)`.
    public var description: String {
        let perFold = folds.map { String(format: "%d %.1f %%", $0.fold, $0.accuracy * 100) }.joined(separator: ", ")
        return String(format: "accuracy %.2f %% ± %.2f %% (sample std over %d folds: ", mean * 100, standardDeviation * 100, folds.count)
            + perFold + ")"
    }

    /// `fold,accuracy,clips` rows followed by `mean` and `std` rows.
    public var csv: String {
        var lines = ["fold,accuracy,clips"]
        for fold in folds { lines.append("\(fold.fold),\(fold.accuracy),\(fold.clipCount.map(String.init) ?? "")") }
        lines.append("mean,\(mean),")
        lines.append("std,\(standardDeviation),")
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes `cross_validation.csv` and `cross_validation.json` into a folder (created if
    /// needed), atomically.
    ///
    /// - Parameter folder: The destination folder.
    /// - Throws: `FileWriteError` naming the folder or file that cannot be written.
    public func write(to folder: URL) throws {
        try AtomicFile.checkWritableFolder(folder)
        try AtomicFile.write(csv, to: folder.appendingPathComponent("cross_validation.csv"))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(encoder.encode(self), to: folder.appendingPathComponent("cross_validation.json"))
    }
}
