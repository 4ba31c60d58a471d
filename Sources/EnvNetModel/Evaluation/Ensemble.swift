import EnvNetAudio
import Foundation

/// Several models voting together, as the EnvNet paper combines EnvNet with the log-mel CNN: each
/// model scores a clip with its own preprocessing and evaluation scheme, and the ensemble's
/// probabilities are the mean of the models' clip probabilities.
///
/// ```swift
/// let ensemble = try Ensemble(modelFiles: [envnetURL, logMelURL])
/// let report = try ensemble.evaluate(dataset, clips: dataset.clips(inFolds: [5]))
/// print(report.ensemble.accuracy, report.members.map(\.report.accuracy))
/// ```
///
/// Classes are matched by name: every model must know the same classes, in any order; the
/// ensemble uses the first model's order. An ensemble holds its networks and is not `Sendable`.
public struct Ensemble {
    /// One model of the ensemble.
    public struct Member {
        /// A name for reports (the file name for ``Ensemble/init(modelFiles:)``).
        public var name: String
        /// The network.
        public var network: any ClassifierNetwork
        /// Its preprocessing, scheme and classes.
        public var description: ModelDescription

        /// - Parameters:
        ///   - name: A name for reports.
        ///   - network: The network.
        ///   - description: Its preprocessing, evaluation scheme and class names.
        public init(name: String, network: any ClassifierNetwork, description: ModelDescription) {
            self.name = name
            self.network = network
            self.description = description
        }
    }

    /// Each member's report and the ensemble's.
    public struct Report: Sendable {
        /// The members' own reports, in member order.
        public var members: [(name: String, report: EvaluationReport)]
        /// The report of the mean probabilities (its window counts are the members' sums).
        public var ensemble: EvaluationReport
    }

    /// The members, in order.
    public let members: [Member]
    /// The classes, in the first member's order.
    public let classNames: [String]
    /// For each member, the position of each ensemble class among the member's outputs.
    private let classOrder: [[Int]]

    /// - Parameter members: One or more models that know the same classes.
    /// - Throws: ``EnvNetError/invalidInput(_:)`` for no members, or a member whose classes differ
    ///   from the first's (naming the missing and extra classes).
    public init(members: [Member]) throws {
        guard let first = members.first else { throw EnvNetError.invalidInput("an ensemble needs at least one model") }
        let wanted = first.description.classNames
        var order: [[Int]] = []
        for member in members {
            let names = member.description.classNames
            guard Set(names).count == names.count else {
                throw EnvNetError.invalidInput("\(member.name) names a class twice: \(names)")
            }
            let missing = wanted.filter { !names.contains($0) }, extra = names.filter { !wanted.contains($0) }
            guard missing.isEmpty, extra.isEmpty, names.count == wanted.count else {
                throw EnvNetError.invalidInput("\(member.name) knows other classes than \(first.name): missing \(missing), extra \(extra)")
            }
            order.append(wanted.map { names.firstIndex(of: $0)! })
        }
        classNames = wanted
        self.members = members
        classOrder = order
    }

    /// Loads every model file (see ``ModelFile/load(from:)``), named by file name.
    /// - Parameter modelFiles: The safetensors files.
    /// - Throws: What loading throws, and as ``init(members:)``.
    public init(modelFiles: [URL]) throws {
        try self.init(members: modelFiles.map { url in
            let (network, description) = try ModelFile.load(from: url)
            return Member(name: url.lastPathComponent, network: network, description: description)
        })
    }

    /// Combines the members' reports on the same clips: the mean of their clip probabilities.
    ///
    /// - Parameter reports: One report per member, in member order, over the same clips in the same
    ///   order (each in the member's own class order, as its ``ClipEvaluator`` made it).
    /// - Returns: The members' reports in the ensemble's class order, and the ensemble's.
    /// - Throws: ``EnvNetError/invalidInput(_:)`` when a report's classes are not its member's, or
    ///   the reports disagree on the clips or labels.
    public func combine(_ reports: [EvaluationReport]) throws -> Report {
        guard reports.count == members.count else {
            throw EnvNetError.invalidInput("\(reports.count) reports for \(members.count) models")
        }
        let aligned = try zip(members, zip(reports, classOrder)).map { member, entry in
            let (report, order) = entry
            guard report.classNames == member.description.classNames else {
                throw EnvNetError.invalidInput("the report given for \(member.name) has the classes \(report.classNames), not the model's \(member.description.classNames)")
            }
            let predictions = try report.predictions.map { prediction in
                guard prediction.probabilities.count == order.count, let trueLabel = order.firstIndex(of: prediction.trueLabel) else {
                    throw EnvNetError.invalidInput("\(prediction.name): \(member.name) scored \(prediction.probabilities.count) classes with label \(prediction.trueLabel); the model has \(order.count)")
                }
                let probabilities = order.map { prediction.probabilities[$0] }
                return ClipPrediction(name: prediction.name, trueLabel: trueLabel,
                                      probabilities: probabilities, predictedLabel: ClipEvaluator.argmax(probabilities),
                                      windowCount: prediction.windowCount)
            }
            return try EvaluationReport(predictions: predictions, classNames: classNames, scheme: report.scheme)
        }
        let first = aligned[0]
        var combined: [ClipPrediction] = []
        for (index, prediction) in first.predictions.enumerated() {
            var sums = [Double](repeating: 0, count: classNames.count)
            var windows = 0
            for (member, report) in aligned.enumerated() {
                guard report.predictions.count == first.predictions.count else {
                    throw EnvNetError.invalidInput("\(members[member].name) scored \(report.predictions.count) clips, \(members[0].name) \(first.predictions.count)")
                }
                let other = report.predictions[index]
                guard other.name == prediction.name, other.trueLabel == prediction.trueLabel else {
                    throw EnvNetError.invalidInput("clip \(index) is \(other.name) for \(members[member].name) but \(prediction.name) for \(members[0].name)")
                }
                for (label, value) in other.probabilities.enumerated() { sums[label] += Double(value) }
                windows += other.windowCount
            }
            let probabilities = sums.map { Float($0 / Double(aligned.count)) }
            combined.append(ClipPrediction(name: prediction.name, trueLabel: prediction.trueLabel, probabilities: probabilities,
                                           predictedLabel: ClipEvaluator.argmax(probabilities), windowCount: windows))
        }
        return Report(members: zip(members, aligned).map { ($0.name, $1) },
                      ensemble: try EvaluationReport(predictions: combined, classNames: classNames))
    }

    /// Evaluates clips of a dataset: every member loads each file with its own preprocessing and
    /// scores it with its own scheme, one file at a time.
    ///
    /// - Parameters:
    ///   - dataset: The dataset; its classes are matched to the models' by name.
    ///   - clips: The clips to evaluate (for example `dataset.clips(inFolds: [5])`).
    ///   - progress: Called after every clip of every member, with the member's index.
    /// - Returns: Each member's report and the ensemble's.
    /// - Throws: `AudioError` naming a file that cannot be read, ``EnvNetError/invalidInput(_:)`` for
    ///   a dataset class no model knows, and what ``ClipEvaluator`` throws.
    public func evaluate(_ dataset: AudioDataset, clips: [AudioClip],
                         progress: ((Int, EvaluationProgress) -> Void)? = nil) throws -> Report {
        let reports = try members.enumerated().map { index, member in
            let relabelled = try dataset.relabelled(as: member.description.classNames)
            let byPath = Dictionary(relabelled.clips.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
            let memberClips = try clips.map { clip in
                guard let match = byPath[clip.path] else { throw EnvNetError.invalidInput("\(clip.path) is not a clip of the dataset") }
                return match
            }
            let evaluator = try ClipEvaluator(network: member.network, scheme: member.description.evaluation)
            return try evaluator.evaluate(relabelled, clips: memberClips, loader: ClipLoader(settings: member.description.preprocessing)) {
                progress?(index, $0)
            }
        }
        return try combine(reports)
    }
}
