import Foundation

/// The prediction for one clip.
public struct ClipPrediction: Sendable, Hashable, Codable {
    /// The clip's name (for example its file name).
    public var name: String
    /// The true class index.
    public var trueLabel: Int
    /// The clip's class probabilities (the mean of its window probabilities), in class order.
    public var probabilities: [Float]
    /// The arg-max of ``probabilities`` (ties go to the lowest index).
    public var predictedLabel: Int
    /// How many windows were averaged.
    public var windowCount: Int

    /// Creates a prediction.
    ///
    /// - Parameters:
    ///   - name: The clip's name.
    ///   - trueLabel: The true class index.
    ///   - probabilities: The clip's class probabilities.
    ///   - predictedLabel: The predicted class index.
    ///   - windowCount: How many windows were averaged.
    public init(name: String, trueLabel: Int, probabilities: [Float], predictedLabel: Int, windowCount: Int) {
        self.name = name
        self.trueLabel = trueLabel
        self.probabilities = probabilities
        self.predictedLabel = predictedLabel
        self.windowCount = windowCount
    }

    /// Whether the prediction is the true label.
    public var isCorrect: Bool { predictedLabel == trueLabel }
}

/// The result of evaluating a set of clips: accuracy, per-class accuracy and the confusion matrix.
public struct EvaluationReport: Sendable, Hashable, Codable {
    /// One name per class, in label order.
    public let classNames: [String]
    /// The scheme the predictions were made with, when known.
    public let scheme: EvaluationScheme?
    /// Every clip's prediction, in evaluation order.
    public let predictions: [ClipPrediction]
    /// `confusionMatrix[true][predicted]` counts clips.
    public let confusionMatrix: [[Int]]

    /// Builds a report from predictions.
    ///
    /// - Parameters:
    ///   - predictions: At least one prediction.
    ///   - classNames: One name per class.
    ///   - scheme: The scheme used, for the record.
    /// - Throws: ``EnvNetError/invalidInput(_:)`` when there are no predictions or classes, or a
    ///   prediction's labels or probability count do not fit the classes.
    public init(predictions: [ClipPrediction], classNames: [String], scheme: EvaluationScheme? = nil) throws {
        guard !classNames.isEmpty else { throw EnvNetError.invalidInput("an evaluation report needs at least one class") }
        guard !predictions.isEmpty else { throw EnvNetError.invalidInput("an evaluation report needs at least one prediction") }
        let classes = classNames.count
        var matrix = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
        for prediction in predictions {
            guard (0..<classes).contains(prediction.trueLabel), (0..<classes).contains(prediction.predictedLabel) else {
                throw EnvNetError.invalidInput("\(prediction.name): labels \(prediction.trueLabel) -> \(prediction.predictedLabel) outside 0..<\(classes)")
            }
            guard prediction.probabilities.count == classes else {
                throw EnvNetError.invalidInput("\(prediction.name): \(prediction.probabilities.count) probabilities for \(classes) classes")
            }
            matrix[prediction.trueLabel][prediction.predictedLabel] += 1
        }
        self.classNames = classNames
        self.scheme = scheme
        self.predictions = predictions
        self.confusionMatrix = matrix
    }

    /// The number of clips.
    public var clipCount: Int { predictions.count }
    /// The number of correctly predicted clips.
    public var correctCount: Int { (0..<classNames.count).reduce(0) { $0 + confusionMatrix[$1][$1] } }
    /// The clip accuracy in [0, 1].
    public var accuracy: Double { Double(correctCount) / Double(clipCount) }
    /// Clips per true class.
    public var clipsPerClass: [Int] { confusionMatrix.map { $0.reduce(0, +) } }
    /// The accuracy of each class in [0, 1]; `nil` for a class without clips.
    public var perClassAccuracy: [Double?] {
        confusionMatrix.indices.map { label in
            let total = confusionMatrix[label].reduce(0, +)
            return total > 0 ? Double(confusionMatrix[label][label]) / Double(total) : nil
        }
    }
    /// The mean number of windows per clip.
    public var meanWindowCount: Double {
        Double(predictions.reduce(0) { $0 + $1.windowCount }) / Double(clipCount)
    }

    /// The numbers of `report.json`: everything but the per-clip predictions.
    public struct Summary: Sendable, Hashable, Codable {
        /// The scheme's description, when known.
        public var scheme: String?
        /// The clip accuracy.
        public var accuracy: Double
        /// The number of clips.
        public var clipCount: Int
        /// The number of correct clips.
        public var correctCount: Int
        /// The mean number of windows per clip.
        public var meanWindowCount: Double
        /// One name per class.
        public var classNames: [String]
        /// Clips per true class.
        public var clipsPerClass: [Int]
        /// Per-class accuracy (`null` for a class without clips).
        public var perClassAccuracy: [Double?]
        /// `confusionMatrix[true][predicted]`.
        public var confusionMatrix: [[Int]]
    }

    /// The report without per-clip predictions.
    public var summary: Summary {
        Summary(scheme: scheme?.description, accuracy: accuracy, clipCount: clipCount, correctCount: correctCount,
                meanWindowCount: meanWindowCount, classNames: classNames, clipsPerClass: clipsPerClass,
                perClassAccuracy: perClassAccuracy, confusionMatrix: confusionMatrix)
    }

    // MARK: - Files

    /// The names of the files ``write(to:)`` produces (EnvNetCharts adds `confusion_matrix.svg`).
    public static let fileNames = ["confusion_matrix.csv", "per_class_accuracy.csv", "predictions.csv", "report.json"]

    /// `confusion_matrix.csv`: a header row `true \ predicted` plus the class names, then one row
    /// per true class: its name and the counts.
    public var confusionMatrixCSV: String {
        var lines = [(["true \\ predicted"] + classNames).map(CSVText.field).joined(separator: ",")]
        for (label, row) in confusionMatrix.enumerated() {
            lines.append(([CSVText.field(classNames[label])] + row.map(String.init)).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `per_class_accuracy.csv`: `label,class,clips,correct,accuracy` (accuracy empty for a class
    /// without clips).
    public var perClassAccuracyCSV: String {
        var lines = ["label,class,clips,correct,accuracy"]
        let accuracies = perClassAccuracy
        for label in classNames.indices {
            let total = confusionMatrix[label].reduce(0, +)
            lines.append("\(label),\(CSVText.field(classNames[label])),\(total),\(confusionMatrix[label][label]),\(accuracies[label].map { String($0) } ?? "")")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `predictions.csv`: per clip its name, true and predicted label and class, correctness,
    /// window count, then one probability column per class (headed `p(<class name>)`).
    public var predictionsCSV: String {
        let header = ["clip", "true_label", "true_class", "predicted_label", "predicted_class", "correct", "windows"]
            + classNames.map { "p(\($0))" }
        var lines = [header.map(CSVText.field).joined(separator: ",")]
        for prediction in predictions {
            let fields = [CSVText.field(prediction.name), String(prediction.trueLabel), CSVText.field(classNames[prediction.trueLabel]),
                          String(prediction.predictedLabel), CSVText.field(classNames[prediction.predictedLabel]),
                          prediction.isCorrect ? "1" : "0", String(prediction.windowCount)]
                + prediction.probabilities.map { String($0) }
            lines.append(fields.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `report.json`: the ``summary`` as pretty-printed JSON with sorted keys.
    ///
    /// - Returns: UTF-8 JSON.
    /// - Throws: `EncodingError` (not expected: every number in the summary is finite).
    public func summaryJSON() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(summary)
    }

    /// Writes ``fileNames`` into a folder (created if needed), each file atomically.
    ///
    /// - Parameter folder: The destination folder.
    /// - Throws: `FileWriteError` naming the folder or file that cannot be written (`EncodingError`
    ///   is not expected: the summary holds only finite numbers).
    public func write(to folder: URL) throws {
        try AtomicFile.checkWritableFolder(folder)
        try AtomicFile.write(confusionMatrixCSV, to: folder.appendingPathComponent("confusion_matrix.csv"))
        try AtomicFile.write(perClassAccuracyCSV, to: folder.appendingPathComponent("per_class_accuracy.csv"))
        try AtomicFile.write(predictionsCSV, to: folder.appendingPathComponent("predictions.csv"))
        try AtomicFile.write(summaryJSON(), to: folder.appendingPathComponent("report.json"))
    }
}

/// CSV formatting shared by the evaluation and analysis reports.
enum CSVText {
    /// A field quoted when it contains a comma, a quote or a line break (quotes doubled), as RFC 4180.
    static func field(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
