import EnvNetLayers
import Foundation

/// The training recipe: optimizer, schedule, batches, augmentation, seed.
///
/// The defaults are the paper's recipe as the seed article runs it: SGD with momentum 0.9
/// (Nesterov), weight decay 5e-4, batch 64, learning rate 0.01 multiplied by 0.1 at epochs 80, 100
/// and 120, 150 epochs.
public struct TrainingConfiguration: Codable, Sendable, Equatable, Hashable {
    /// Epochs to train (doubled, with the milestones, under BC learning).
    public var epochs: Int = 150
    /// Windows per training step.
    public var batchSize: Int = 64
    /// The base learning rate.
    public var learningRate: Float = 0.01
    /// SGD momentum.
    public var momentum: Float = 0.9
    /// Whether to use Nesterov momentum.
    public var nesterov: Bool = true
    /// L2 penalty added to the gradient.
    public var weightDecay: Float = 5e-4
    /// Epochs (counted from 0) at which the learning rate is multiplied by ``gamma``.
    public var milestones: [Int] = [80, 100, 120]
    /// The learning-rate factor at each milestone.
    public var gamma: Float = 0.1
    /// Epochs of learning-rate warm-up (0 for none): a linear ramp from 10 %, or 10 % throughout
    /// with ``WarmupStyle/constant`` (the authors' code).
    public var warmupEpochs: Double = 0
    /// How the warm-up runs; nil is ``WarmupStyle/linear`` (files written before 0.8).
    public var warmupStyle: WarmupStyle? = nil
    /// Whether BC learning doubles ``epochs`` and ``milestones``; nil is true (files written
    /// before 0.8). The presets (``RecipePreset``) store their final numbers and set it to false,
    /// so that an explicit epoch count is taken as given.
    public var betweenClassDoublesEpochs: Bool? = nil
    /// Between-class learning: mix two clips of different classes, train on the mixed target with
    /// a KL loss; epochs and milestones are doubled.
    public var betweenClassLearning: Bool = false
    /// Strong augmentation: random time scale 1.25^U(-1,1) and gain U(-6, +6) dB.
    public var strongAugmentation: Bool = false
    /// The seed of everything random in training (initial weights excepted: see ``EnvNet/init(configuration:seed:)``).
    public var seed: UInt64 = 0
    /// A crop is silent (and drawn again) when its peak is at or below this.
    public var silenceThreshold: Float = 0.2
    /// Validate every this many epochs and after the last; 0 validates only after the last.
    public var validationInterval: Int = 1

    /// The recipe with every value at its default.
    public init() {}

    /// How a warm-up raises the learning rate.
    public enum WarmupStyle: String, Codable, Sendable, Hashable {
        /// From 10 % linearly to the full rate (per step).
        case linear
        /// 10 % until the warm-up ends, then the full rate: the authors' `lr_schedule`.
        case constant
    }

    private var doubles: Bool { betweenClassLearning && (betweenClassDoublesEpochs ?? true) }

    /// Epochs actually run.
    public var effectiveEpochs: Int { doubles ? 2 * epochs : epochs }

    /// Milestones actually used.
    public var effectiveMilestones: [Int] { doubles ? milestones.map { 2 * $0 } : milestones }

    /// The learning-rate schedule of this recipe.
    public var schedule: LearningRateSchedule {
        let steps = LearningRateSchedule.multiStep(milestones: effectiveMilestones, gamma: gamma)
        guard warmupEpochs > 0 else { return steps }
        switch warmupStyle ?? .linear {
        case .linear: return .linearWarmup(epochs: warmupEpochs, startFactor: 0.1, then: steps)
        case .constant: return .constantWarmup(epochs: warmupEpochs, factor: 0.1, then: steps)
        }
    }

    /// Checks every value.
    /// - Throws: ``TrainingError/invalidConfiguration(_:)`` naming the value.
    public func validate() throws {
        func fail(_ message: String) -> TrainingError { .invalidConfiguration(message) }
        guard epochs >= 1, epochs <= 1_000_000 else { throw fail("epochs must be between 1 and 1000000, got \(epochs)") }
        guard batchSize >= 1 else { throw fail("batch size must be at least 1, got \(batchSize)") }
        guard learningRate > 0, learningRate.isFinite else { throw fail("learning rate must be positive, got \(learningRate)") }
        guard momentum >= 0, momentum < 1 else { throw fail("momentum must be in [0, 1), got \(momentum)") }
        guard !nesterov || momentum > 0 else { throw fail("Nesterov momentum needs a momentum above 0") }
        guard weightDecay >= 0, weightDecay.isFinite else { throw fail("weight decay must be finite and not negative, got \(weightDecay)") }
        guard gamma > 0, gamma.isFinite else { throw fail("gamma must be positive and finite, got \(gamma)") }
        guard milestones.allSatisfy({ $0 >= 0 && $0 <= 1_000_000 }) else { throw fail("milestones must be between 0 and 1000000: \(milestones)") }
        guard warmupEpochs >= 0, warmupEpochs.isFinite else { throw fail("warm-up epochs must be finite and not negative, got \(warmupEpochs)") }
        guard silenceThreshold >= 0, silenceThreshold.isFinite else { throw fail("silence threshold must be finite and not negative") }
        guard validationInterval >= 0 else { throw fail("validation interval must not be negative") }
    }
}

/// What stopped training.
public enum TrainingError: Error, CustomStringConvertible, Sendable, Equatable {
    case invalidConfiguration(String)
    case emptyTrainingSet
    case invalidLabel(clip: String, label: Int, classCount: Int)
    case diverged(epoch: Int, step: Int, loss: Float, checkpoint: String?)
    /// A weight or BatchNorm statistic became NaN or infinite in a step whose loss was finite;
    /// nothing was saved from that step on.
    case nonFiniteWeights(epoch: Int, step: Int, tensor: String, checkpoint: String?)
    case checkpointMismatch(path: String, reason: String)
    /// The members of a data-parallel job disagree or could not exchange (see ``DataParallelism``).
    /// `step` is 0 before the first step.
    case dataParallel(epoch: Int, step: Int, reason: String)

    public var description: String {
        switch self {
        case let .invalidConfiguration(message): return "invalid training configuration: \(message)"
        case .emptyTrainingSet: return "the training set has no clips"
        case let .invalidLabel(clip, label, classCount): return "clip \(clip): label \(label) is outside 0..<\(classCount)"
        case let .diverged(epoch, step, loss, checkpoint):
            let kept = checkpoint.map { "; the last good checkpoint is kept at \($0)" } ?? ""
            return "training diverged: loss \(loss) at epoch \(epoch), step \(step)\(kept)"
        case let .nonFiniteWeights(epoch, step, tensor, checkpoint):
            let kept = checkpoint.map { "; the last good checkpoint is kept at \($0)" } ?? "; no model was saved"
            return "training diverged: \(tensor) became NaN or infinite at epoch \(epoch), step \(step)\(kept)"
        case let .checkpointMismatch(path, reason): return "\(path): cannot resume: \(reason)"
        case let .dataParallel(epoch, step, reason):
            return step == 0 ? "data-parallel training could not start: \(reason)" : "data-parallel training stopped at epoch \(epoch), step \(step): \(reason)"
        }
    }
}

/// A clip ready for training or evaluation: 16 kHz samples (normalized), its class, a name for messages.
public struct LabeledClip: Sendable {
    public var samples: [Float]
    public var label: Int
    public var name: String
    /// - Parameters:
    ///   - samples: 16 kHz samples, normalized as the network expects.
    ///   - label: the class index.
    ///   - name: names the clip in messages (usually its file name).
    public init(samples: [Float], label: Int, name: String) {
        self.samples = samples
        self.label = label
        self.name = name
    }
}

/// One epoch's figures, as printed and as written to `log.jsonl`.
public struct EpochRecord: Codable, Sendable, Equatable {
    /// The epoch, counted from 1.
    public var epoch: Int
    public var learningRate: Double
    /// Mean training loss over the epoch's steps.
    public var loss: Double
    /// Fraction of training windows whose arg-max was the (dominant) label.
    public var trainAccuracy: Double
    /// Clip accuracy on the validation set, when validated this epoch.
    public var validationAccuracy: Double?
    /// Wall-clock seconds of the epoch (training and validation).
    public var seconds: Double
    /// Seconds spent building batches (cropping, silence rejection, mixing, augmentation). Batches
    /// are built on a background thread while the network trains on the previous one, so this
    /// time overlaps with the network's; nil in logs of older versions.
    public var preparationSeconds: Double?
    /// Seconds the training loop waited for a batch that was not ready: the part of
    /// ``preparationSeconds`` that did not overlap with the network. nil in logs of older versions.
    public var batchWaitSeconds: Double?

    public init(epoch: Int, learningRate: Double, loss: Double, trainAccuracy: Double, validationAccuracy: Double?, seconds: Double,
                preparationSeconds: Double? = nil, batchWaitSeconds: Double? = nil) {
        self.epoch = epoch
        self.learningRate = learningRate
        self.loss = loss
        self.trainAccuracy = trainAccuracy
        self.validationAccuracy = validationAccuracy
        self.seconds = seconds
        self.preparationSeconds = preparationSeconds
        self.batchWaitSeconds = batchWaitSeconds
    }

    /// The line printed for the epoch.
    public var line: String {
        let validation = validationAccuracy.map { String(format: "%6.2f%%", $0 * 100) } ?? "      -"
        return String(format: "epoch %4d  lr %.5f  loss %.4f  train %6.2f%%  validation %@  %6.1f s",
                      epoch, learningRate, loss, trainAccuracy * 100, validation, seconds)
    }
}
