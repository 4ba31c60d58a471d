import Foundation

/// Stochastic gradient descent with momentum, Nesterov momentum and weight decay, with exactly
/// PyTorch's update (`torch.optim.SGD`), for every parameter `p` with gradient `g`:
///
/// ```
/// d = g + weightDecay · p
/// buf = d                                        (first step of p)
/// buf = momentum · buf + (1 − dampening) · d     (later steps)
/// d = nesterov ? d + momentum · buf : buf         (when momentum ≠ 0)
/// p = p − lr · d
/// ```
///
/// `lr` is ``baseLearningRate`` times the ``schedule``'s factor at ``epoch``, which the training loop
/// sets. Momentum buffers are kept by parameter key, so ``state`` can be saved with a checkpoint
/// and restored into a fresh optimizer. The update is a pointer loop over each parameter, parallel
/// for large ones, with no allocation after the first step.
public struct SGD: Sendable {
    /// The learning rate before the schedule's factor.
    public var baseLearningRate: Float
    /// Momentum factor (0 for none).
    public var momentum: Float
    /// Dampening of the momentum (PyTorch's default 0; must be 0 with Nesterov).
    public var dampening: Float
    /// L2 penalty added to the gradient.
    public var weightDecay: Float
    /// Whether to use Nesterov momentum.
    public var nesterov: Bool
    /// The learning-rate schedule.
    public var schedule: LearningRateSchedule
    /// The current epoch (counted from 0, possibly fractional), which selects the schedule's factor.
    public var epoch: Double = 0
    /// How many steps have been taken.
    public private(set) var stepCount: Int = 0
    private var momentumBuffers: [String: Tensor] = [:]

    /// - Parameters:
    ///   - learningRate: the base learning rate.
    ///   - momentum: momentum factor (0 for plain SGD).
    ///   - dampening: dampening of the momentum.
    ///   - weightDecay: L2 penalty.
    ///   - nesterov: whether to use Nesterov momentum (needs momentum > 0 and dampening 0).
    ///   - schedule: the learning-rate schedule (constant by default).
    public init(
        learningRate: Float, momentum: Float = 0, dampening: Float = 0, weightDecay: Float = 0, nesterov: Bool = false,
        schedule: LearningRateSchedule = .constant
    ) {
        precondition(learningRate >= 0 && momentum >= 0 && weightDecay >= 0,
                     "SGD: invalid learning rate \(learningRate), momentum \(momentum) or weight decay \(weightDecay)")
        precondition(!nesterov || (momentum > 0 && dampening == 0), "SGD: Nesterov momentum requires a momentum and zero dampening")
        baseLearningRate = learningRate
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        self.schedule = schedule
    }

    /// The learning rate the next step uses: `baseLearningRate · schedule.factor(atEpoch: epoch)`.
    public var learningRate: Float { schedule.learningRate(base: baseLearningRate, epoch: epoch) }

    /// Updates every parameter of `module` from its gradient.
    /// - Parameter module: the model whose ``Module/namedParameters()`` are updated.
    public mutating func step(_ module: Module) {
        step(parameters: module.namedParameters())
    }

    /// Updates the given parameters from their gradients; the keys name the momentum buffers.
    /// - Parameter parameters: (key, parameter) pairs, as ``Module/namedParameters()`` gives them.
    public mutating func step(parameters: [(key: String, parameter: Parameter)]) {
        let lr = learningRate, momentum = self.momentum, dampening = self.dampening, decay = weightDecay, nesterov = self.nesterov
        for (key, parameter) in parameters {
            precondition(parameter.gradient.shape == parameter.value.shape,
                         "SGD: gradient \(shapeText(parameter.gradient.shape)) of \(key) does not match its value \(shapeText(parameter.value.shape))")
            let gradient = parameter.gradient.contiguous()
            parameter.value.makeContiguousAndUnique()
            let p = parameter.value.storage.baseAddress + parameter.value.offset
            let g = gradient.readPointer
            let count = parameter.value.count
            if momentum == 0 {
                forEachBlock(count: count) { range in
                    for i in range { p[i] -= lr * (g[i] + decay * p[i]) }
                }
            } else if momentumBuffers[key]?.shape == parameter.value.shape {
                momentumBuffers[key]!.makeContiguousAndUnique()
                let buffer = momentumBuffers[key]!.storage.baseAddress + momentumBuffers[key]!.offset
                forEachBlock(count: count) { range in
                    for i in range {
                        let d = g[i] + decay * p[i]
                        let b = momentum * buffer[i] + (1 - dampening) * d
                        buffer[i] = b
                        p[i] -= lr * (nesterov ? d + momentum * b : b)
                    }
                }
            } else {
                var fresh = Tensor.zeros(parameter.value.shape)
                let buffer = fresh.storage.baseAddress
                forEachBlock(count: count) { range in
                    for i in range {
                        let d = g[i] + decay * p[i]
                        buffer[i] = d
                        p[i] -= lr * (nesterov ? d + momentum * d : d)
                    }
                }
                fresh.makeContiguousAndUnique()
                momentumBuffers[key] = fresh
            }
            withExtendedLifetime(gradient) {}
        }
        stepCount += 1
    }

    /// The momentum buffer of the parameter with `key`, if a step has created it.
    /// - Parameter key: the parameter's key.
    public func momentumBuffer(forKey key: String) -> Tensor? { momentumBuffers[key] }

    /// Everything needed to resume: step count, epoch and momentum buffers.
    public var state: SGDState {
        get { SGDState(stepCount: stepCount, epoch: epoch, momentumBuffers: momentumBuffers) }
        set {
            stepCount = newValue.stepCount
            epoch = newValue.epoch
            momentumBuffers = newValue.momentumBuffers.mapValues { $0.contiguousCopy() }
        }
    }
}

/// The state of an ``SGD`` optimizer: `Codable` (tensors as shape and values), and also available as
/// plain tensors and scalars (``tensors``, ``scalars``) for a tensor file such as safetensors.
public struct SGDState: Sendable, Equatable, Codable {
    /// Steps taken.
    public var stepCount: Int
    /// The epoch the optimizer was at.
    public var epoch: Double
    /// Momentum buffers by parameter key.
    public var momentumBuffers: [String: Tensor]

    /// - Parameters:
    ///   - stepCount: steps taken.
    ///   - epoch: the current epoch.
    ///   - momentumBuffers: momentum buffers by parameter key.
    public init(stepCount: Int, epoch: Double, momentumBuffers: [String: Tensor]) {
        self.stepCount = stepCount
        self.epoch = epoch
        self.momentumBuffers = momentumBuffers
    }

    /// The momentum buffers keyed `momentum_buffer.<parameter key>`.
    public var tensors: [String: Tensor] {
        Dictionary(uniqueKeysWithValues: momentumBuffers.map { ("momentum_buffer." + $0.key, $0.value) })
    }

    /// The scalars: `step_count` and `epoch`.
    public var scalars: [String: Double] { ["step_count": Double(stepCount), "epoch": epoch] }

    /// Rebuilds a state from ``tensors`` and ``scalars``.
    /// - Parameters:
    ///   - tensors: tensors keyed `momentum_buffer.<parameter key>` (other keys are ignored).
    ///   - scalars: `step_count` and `epoch` (0 when absent).
    public init(tensors: [String: Tensor], scalars: [String: Double]) {
        let prefix = "momentum_buffer."
        var buffers: [String: Tensor] = [:]
        for (key, value) in tensors where key.hasPrefix(prefix) { buffers[String(key.dropFirst(prefix.count))] = value }
        self.init(stepCount: Int(scalars["step_count"] ?? 0), epoch: scalars["epoch"] ?? 0, momentumBuffers: buffers)
    }

    private struct StoredTensor: Codable {
        var shape: [Int]
        var data: [Float]
    }

    private enum CodingKeys: String, CodingKey { case stepCount, epoch, momentumBuffers }

    /// Decodes a state whose buffers are stored as shape and values.
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        stepCount = try container.decode(Int.self, forKey: .stepCount)
        epoch = try container.decode(Double.self, forKey: .epoch)
        let stored = try container.decode([String: StoredTensor].self, forKey: .momentumBuffers)
        momentumBuffers = try stored.mapValues { try Tensor(validating: $0.data, shape: $0.shape) }
    }

    /// Encodes the buffers as shape and values.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(stepCount, forKey: .stepCount)
        try container.encode(epoch, forKey: .epoch)
        try container.encode(momentumBuffers.mapValues { StoredTensor(shape: $0.shape, data: $0.scalars) }, forKey: .momentumBuffers)
    }
}
