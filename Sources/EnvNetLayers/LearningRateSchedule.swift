import Foundation

/// A learning-rate schedule: a factor applied to the optimizer's base learning rate, as a function of
/// the (possibly fractional) epoch counted from 0.
///
/// Schedules compose: ``linearWarmup(epochs:startFactor:then:)`` wraps any other schedule.
/// The multi-step rule is PyTorch's `MultiStepLR` stepped once per epoch: during epoch `e` the
/// factor is `gamma^k`, `k` the number of milestones `≤ e` (milestones [80, 100, 120] and gamma 0.1
/// give 1 for epochs 0–79, 0.1 for 80–99, 0.01 for 100–119, 0.001 from 120).
public indirect enum LearningRateSchedule: Sendable, Equatable, Codable, CustomStringConvertible {
    /// Factor 1 throughout.
    case constant
    /// Factor `gamma^k` with `k` the number of milestones at or before the epoch.
    case multiStep(milestones: [Int], gamma: Float)
    /// Factor rising linearly from `startFactor` at epoch 0 to 1 at `epochs`, multiplied by the wrapped
    /// schedule's factor (use fractional epochs, `epoch + batch / batches`, to warm up per step).
    case linearWarmup(epochs: Double, startFactor: Float, then: LearningRateSchedule)
    /// Factor `factor` before epoch `epochs`, then the wrapped schedule's (the authors' warm-up:
    /// bc_learning_sound trains its first 10 epochs at a tenth of the learning rate).
    case constantWarmup(epochs: Double, factor: Float, then: LearningRateSchedule)

    /// The factor for `epoch`.
    /// - Parameter epoch: the epoch counted from 0; may be fractional.
    public func factor(atEpoch epoch: Double) -> Float {
        switch self {
        case .constant:
            return 1
        case let .multiStep(milestones, gamma):
            let passed = milestones.filter { Double($0) <= epoch }.count
            return Float(Foundation.pow(Double(gamma), Double(passed)))
        case let .linearWarmup(epochs, startFactor, then):
            let warm: Float = epochs > 0 && epoch < epochs
                ? startFactor + (1 - startFactor) * Float(Swift.max(epoch, 0) / epochs) : 1
            return warm * then.factor(atEpoch: epoch)
        case let .constantWarmup(epochs, factor, then):
            return epoch < epochs ? factor : then.factor(atEpoch: epoch)
        }
    }

    /// `base · factor(atEpoch: epoch)`.
    /// - Parameters:
    ///   - base: the base learning rate.
    ///   - epoch: the epoch counted from 0; may be fractional.
    public func learningRate(base: Float, epoch: Double) -> Float { base * factor(atEpoch: epoch) }

    /// A readable one-line form.
    public var description: String {
        switch self {
        case .constant: return "constant"
        case let .multiStep(milestones, gamma): return "multiStep(milestones: \(milestones), gamma: \(gamma))"
        case let .linearWarmup(epochs, startFactor, then): return "linearWarmup(epochs: \(epochs), startFactor: \(startFactor), then: \(then))"
        case let .constantWarmup(epochs, factor, then): return "constantWarmup(epochs: \(epochs), factor: \(factor), then: \(then))"
        }
    }
}
