import Foundation
import Testing
@testable import EnvNetLayers

/// Mode-dependent behaviour (Dropout, BatchNorm), losses, schedules, optimizer state, buffer reuse.
@Suite("Layer behaviour")
struct BehaviorTests {
    @Test("Dropout: identity in evaluation; in training zeroes ~p, scales survivors by 1/(1−p), reproducible from its seed")
    func dropout() {
        let count = 100_000
        let input = Tensor.filled(2, shape: [100, count / 100])
        let layer = Dropout(probability: 0.3, seed: 1234)
        let output = layer(input).scalars
        let zeros = output.filter { $0 == 0 }.count
        #expect(abs(Double(zeros) / Double(count) - 0.3) < 0.006)  // 4 standard deviations
        #expect(output.allSatisfy { $0 == 0 || abs($0 - 2 / 0.7) < 1e-5 })
        let mean = output.reduce(0.0) { $0 + Double($1) } / Double(count)
        #expect(abs(mean - 2) < 0.03)
        // The backward pass uses the same mask.
        let gradient = layer.backward(Tensor.ones(input.shape)).scalars
        #expect(zip(gradient, output).allSatisfy { ($0.0 == 0) == ($0.1 == 0) && ($0.0 == 0 || abs($0.0 - 1 / 0.7) < 1e-5) })
        // Same seed, same mask; the generator advances between calls.
        let again = Dropout(probability: 0.3, seed: 1234)
        #expect(again(input).scalars == output)
        #expect(again(input).scalars != output)
        // Evaluation: the input itself.
        layer.eval()
        #expect(layer(input) == input)
        // p = 0 keeps everything, p = 1 drops everything.
        #expect(Dropout(probability: 0, seed: 1)(input) == input)
        #expect(Dropout(probability: 1, seed: 1)(input) == Tensor.zeros(input.shape))
    }
    /// Stands in for the other process of a two-process job: records this process's local sums,
    /// and merges in the other's when it has them (rank 0's statistics first, as an allgather of
    /// the ranks' statistics would).
    final class RecordingReducer: BatchNormalization.StatisticsReducer {
        var moments: [BatchNormalization.Moments] = []
        var sums: [Double] = []
        var otherMoments: [BatchNormalization.Moments]?
        var otherSums: [Double]?
        let isFirst: Bool

        init(isFirst: Bool) { self.isFirst = isFirst }

        var parameterGradientShare: Double { 0.5 }

        func combine(_ local: inout [BatchNormalization.Moments]) {
            moments = local
            if let otherMoments { local = zip(local, otherMoments).map { isFirst ? $0.merged(with: $1) : $1.merged(with: $0) } }
        }

        func sum(_ local: inout [Double]) {
            sums = local
            if let otherSums { local = zip(local, otherSums).map { $0 + $1 } }
        }
    }

    @Test("Synchronised BatchNorm: two halves with each other's statistics equal the whole batch")
    func synchronisedBatchNorm() {
        var generator = SeededGenerator(seed: 41)
        let shape = [4, 3, 2, 10]
        let input = Tensor.normal(shape, mean: 2, standardDeviation: 3, generator: &generator)
        let upstream = Tensor.normal(shape, generator: &generator)
        func layer(_ reducer: RecordingReducer? = nil) -> BatchNorm2d {
            let norm = BatchNorm2d(featureCount: 3, fusedReLU: true)
            norm.weight!.value = Tensor([0.5, -1.5, 2], shape: [3])
            norm.bias!.value = Tensor([0.1, 0.2, -0.3], shape: [3])
            norm.statisticsReducer = reducer
            return norm
        }
        func half(_ tensor: Tensor, _ index: Int) -> Tensor { tensor.narrowed(axis: 0, start: 2 * index, length: 2).contiguous() }
        let whole = layer()
        let wholeOutput = whole(input)
        let wholeGradient = whole.backward(upstream)

        // Each half's local statistics, as each process would compute them.
        let probes = [RecordingReducer(isFirst: true), RecordingReducer(isFirst: false)]
        for index in 0..<2 { _ = layer(probes[index])(half(input, index)) }
        // The two processes, each with the other's statistics.
        let reducers = [RecordingReducer(isFirst: true), RecordingReducer(isFirst: false)]
        reducers[0].otherMoments = probes[1].moments
        reducers[1].otherMoments = probes[0].moments
        let ranks = [layer(reducers[0]), layer(reducers[1])]
        let outputs = (0..<2).map { ranks[$0](half(input, $0)) }
        // The second's local backward sums first (they need only the combined statistics), then the first's backward with them.
        _ = ranks[1].backward(half(upstream, 1))
        reducers[0].otherSums = reducers[1].sums
        let firstGradient = ranks[0].backward(half(upstream, 0))
        // The second again, now with the first's sums too (its scale and shift gradients need the global sums).
        let secondReducer = RecordingReducer(isFirst: false)
        secondReducer.otherMoments = probes[0].moments
        secondReducer.otherSums = reducers[0].sums
        let second = layer(secondReducer)
        _ = second(half(input, 1))
        _ = second.backward(half(upstream, 1))
        for index in 0..<2 {
            expectClose(outputs[index], half(wholeOutput, index), "output of half \(index)")
            expectClose(ranks[index].runningMean.value, whole.runningMean.value, "running mean of half \(index)")
            expectClose(ranks[index].runningVariance.value, whole.runningVariance.value, "running variance of half \(index)")
        }
        expectClose(firstGradient, half(wholeGradient, 0), "input gradient")
        // The scale and shift gradients are each process's share (half of the global sums): the two add up to the whole.
        expectClose(ranks[0].weight!.gradient + second.weight!.gradient, whole.weight!.gradient, "scale gradient")
        expectClose(ranks[0].bias!.gradient + second.bias!.gradient, whole.bias!.gradient, "shift gradient")
        // Without a reducer a half is normalised with its own statistics, which differ.
        #expect(layer()(half(input, 0)).scalars != outputs[0].scalars)
    }

    @Test("Per-sample dropout streams give a sample the same mask whether its batch is whole or split")
    func perSampleDropoutStreams() {
        var generator = SeededGenerator(seed: 3)
        let input = Tensor.normal([4, 6], generator: &generator)
        let whole = Dropout(probability: 0.5, seed: 1)
        whole.sampleStreams = Dropout.SampleStreams(seed: 9, firstStream: 100)
        let wholeOutput = whole(input).scalars
        // Two halves, as two processes of a data-parallel job would see them.
        var halves: [Float] = []
        for half in 0..<2 {
            let layer = Dropout(probability: 0.5, seed: 2)  // its own generator plays no part
            layer.sampleStreams = Dropout.SampleStreams(seed: 9, firstStream: 100 + UInt64(2 * half))
            halves += layer(input.narrowed(axis: 0, start: 2 * half, length: 2).contiguous()).scalars
        }
        #expect(halves == wholeOutput)
        // Different positions draw different masks, and the backward pass uses the same mask.
        #expect(Array(wholeOutput[0..<6]).map { $0 == 0 } != Array(wholeOutput[6..<12]).map { $0 == 0 })
        let gradient = whole.backward(Tensor.ones([4, 6])).scalars
        #expect(zip(gradient, wholeOutput).allSatisfy { ($0 == 0) == ($1 == 0) })
    }


    @Test("BatchNorm: batch statistics in training (biased to normalise, unbiased for the running average), running statistics in evaluation")
    func batchNormModes() {
        let layer = BatchNorm1d(featureCount: 2)
        // Channel 0: 1, 2, 3, 4 (mean 2.5, biased var 1.25, unbiased 5/3); channel 1: 10, 10, 10, 14 (mean 11, var 3, unbiased 4).
        let input = Tensor([1, 10, 2, 10, 3, 10, 4, 14], shape: [4, 2])
        let output = layer(input)
        let inverse0 = 1 / (1.25 + 1e-5).squareRoot(), inverse1 = 1 / (3 + 1e-5).squareRoot()
        let expected = Tensor([Float(-1.5 * inverse0), Float(-inverse1), Float(-0.5 * inverse0), Float(-inverse1),
                               Float(0.5 * inverse0), Float(-inverse1), Float(1.5 * inverse0), Float(3 * inverse1)], shape: [4, 2])
        #expect(output.isApproximatelyEqual(to: expected, relativeTolerance: 1e-5, absoluteTolerance: 1e-6))
        #expect(layer.runningMean.value.isApproximatelyEqual(to: Tensor([0.25, 1.1]), relativeTolerance: 1e-6))
        #expect(layer.runningVariance.value.isApproximatelyEqual(to: Tensor([0.9 + 0.1 * 5 / 3, 0.9 + 0.4]), relativeTolerance: 1e-6))
        _ = layer.backward(Tensor.zeros([4, 2]))

        // Evaluation: (x − running mean) / √(running var + ε) · γ + β, statistics unchanged.
        layer.weight!.value = Tensor([2, 1])
        layer.bias!.value = Tensor([0.5, -1])
        layer.eval()
        let runningBefore = (layer.runningMean.value, layer.runningVariance.value)
        let evaluated = layer(Tensor([1, 2], shape: [1, 2]))
        let mean = layer.runningMean.value.scalars, variance = layer.runningVariance.value.scalars
        let expectedEval = Tensor([2 * (1 - mean[0]) / (variance[0] + 1e-5).squareRoot() + 0.5,
                                   (2 - mean[1]) / (variance[1] + 1e-5).squareRoot() - 1], shape: [1, 2])
        #expect(evaluated.isApproximatelyEqual(to: expectedEval, relativeTolerance: 1e-5))
        #expect(layer.runningMean.value == runningBefore.0 && layer.runningVariance.value == runningBefore.1)

        // Training output of BatchNorm2d is normalised per channel over N, H, W.
        var generator = SeededGenerator(seed: 8)
        let bn2 = BatchNorm2d(featureCount: 3)
        let x = Tensor.normal([4, 3, 5, 6], mean: 3, standardDeviation: 2, generator: &generator)
        let y = bn2(x)
        let channelMeans = y.mean(alongAxes: [0, 2, 3]).scalars
        let channelVariances = y.variance(alongAxes: [0, 2, 3]).scalars
        #expect(channelMeans.allSatisfy { abs($0) < 1e-5 })
        #expect(channelVariances.allSatisfy { abs($0 - 1) < 1e-3 })
        // The running mean moved 10 % of the way to the batch mean.
        let batchMeans = x.mean(alongAxes: [0, 2, 3])
        #expect(bn2.runningMean.value.isApproximatelyEqual(to: batchMeans * 0.1, relativeTolerance: 1e-5))
    }

    @Test("BatchNorm with fused ReLU equals BatchNorm followed by ReLU, bit for bit, forward and backward, in both modes",
          arguments: [false, true])
    func batchNormFusedReLU(twoDimensional: Bool) {
        var generator = SeededGenerator(seed: 21)
        // Odd lengths exercise the SIMD tails; shift and scale make about half the values negative.
        let shape = twoDimensional ? [3, 4, 2, 13] : [5, 4, 11]
        let make: (Bool) -> BatchNorm = { fused in
            twoDimensional ? BatchNorm2d(featureCount: 4, fusedReLU: fused) : BatchNorm1d(featureCount: 4, fusedReLU: fused)
        }
        let fused = make(true), plain = make(false), relu = ReLU()
        let gamma = Tensor.normal([4], mean: 1, standardDeviation: 0.5, generator: &generator)
        let beta = Tensor.normal([4], mean: 0, standardDeviation: 0.5, generator: &generator)
        for layer in [fused, plain] { layer.weight!.value = gamma; layer.bias!.value = beta }
        for _ in 0..<2 {
            let input = Tensor.normal(shape, mean: 0.3, standardDeviation: 2, generator: &generator)
            let upstream = Tensor.normal(shape, mean: 0, standardDeviation: 1, generator: &generator)
            fused.zeroGradients(); plain.zeroGradients()
            let fusedOutput = fused(input), plainOutput = relu(plain(input))
            #expect(fusedOutput == plainOutput)
            #expect(fusedOutput.scalars.contains(0) && fusedOutput.scalars.contains { $0 > 0 })
            let fusedGradient = fused.backward(upstream)
            let plainGradient = plain.backward(relu.backward(upstream))
            #expect(fusedGradient == plainGradient)
            #expect(fused.weight!.gradient == plain.weight!.gradient && fused.bias!.gradient == plain.bias!.gradient)
            #expect(fused.runningMean.value == plain.runningMean.value && fused.runningVariance.value == plain.runningVariance.value)
        }
        fused.eval(); plain.eval(); relu.eval()
        let input = Tensor.normal(shape, mean: 0.3, standardDeviation: 2, generator: &generator)
        #expect(fused(input) == relu(plain(input)))
        #expect(fused.layerDescription.contains("fusedReLU: true") && !plain.layerDescription.contains("fusedReLU"))
    }

    @Test("MaxPool2d and BatchNorm with gradients written over their inputs' storage equal the separate-buffer results")
    func gradientsInInputStorage() {
        var generator = SeededGenerator(seed: 31)
        let input = Tensor.normal([2, 3, 4, 12], generator: &generator)
        let pooled = MaxPool2d(kernelSize: (2, 3)), reference = MaxPool2d(kernelSize: (2, 3))
        pooled.reusesInputStorageForGradient = true
        let upstream = Tensor.normal([2, 3, 2, 4], generator: &generator)
        var owned = input.contiguousCopy()  // a buffer of its own: it is overwritten
        #expect(pooled(owned) == reference(input))
        let expected = reference.backward(upstream)
        let gradient = pooled.backward(upstream)
        #expect(gradient == expected)
        owned = Tensor.zeros([0])

        let bn = BatchNorm2d(featureCount: 3, fusedReLU: true), bnReference = BatchNorm2d(featureCount: 3, fusedReLU: true)
        bn.reusesInputStorageForGradient = true
        let bnInput = input.contiguousCopy()
        #expect(bn(bnInput) == bnReference(input))
        let bnUpstream = Tensor.normal([2, 3, 4, 12], generator: &generator)
        let bnExpected = bnReference.backward(bnUpstream)
        #expect(bn.backward(bnUpstream) == bnExpected)
        #expect(bn.weight!.gradient == bnReference.weight!.gradient && bn.bias!.gradient == bnReference.bias!.gradient)

        // Both input-gradient paths: the transposed convolution (8 or more input channels) and col2im.
        for channels in [3, 9] {
            let convolution = Conv2d(inputChannels: channels, outputChannels: 5, kernelSize: (1, 4), padding: (0, 1), bias: true)
            let convolutionReference = Conv2d(inputChannels: channels, outputChannels: 5, kernelSize: (1, 4), padding: (0, 1), bias: true)
            convolutionReference.weight.value = convolution.weight.value
            convolutionReference.bias!.value = convolution.bias!.value
            convolution.reusesInputStorageForGradient = true
            let convolutionInput = Tensor.normal([2, channels, 1, 17], generator: &generator)
            let convolutionOwned = convolutionInput.contiguousCopy()
            #expect(convolution(convolutionOwned) == convolutionReference(convolutionInput))
            let convolutionUpstream = Tensor.normal([2, 5, 1, 16], generator: &generator)
            let convolutionExpected = convolutionReference.backward(convolutionUpstream)
            #expect(convolution.backward(convolutionUpstream) == convolutionExpected, "\(channels) channels")
            #expect(convolution.weight.gradient == convolutionReference.weight.gradient)
            #expect(convolution.bias!.gradient == convolutionReference.bias!.gradient)
        }
    }

    @Test("BatchNorm's one-pass statistics match a Double two-pass reference for offset data and outlying rows")
    func batchNormStatisticsAreAccurate() {
        var generator = SeededGenerator(seed: 77)
        let shape = [6, 2, 1, 3001]
        var values = Tensor.normal(shape, mean: 1000, standardDeviation: 0.5, generator: &generator).scalars
        for index in 0..<3001 { values[index] += 40 }  // the first row of channel 0 lies far from the rest
        let input = Tensor(values, shape: shape)
        let layer = BatchNorm2d(featureCount: 2, momentum: 1)  // the running statistics become the batch's
        _ = layer(input)
        for channel in 0..<2 {
            var column: [Double] = []
            for n in 0..<6 { column += values[((n * 2 + channel) * 3001)..<((n * 2 + channel + 1) * 3001)].map(Double.init) }
            let mean = column.reduce(0, +) / Double(column.count)
            let unbiased = column.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(column.count - 1)
            #expect(abs(Double(layer.runningMean.value.scalars[channel]) - mean) <= 1e-4 * mean)
            #expect(abs(Double(layer.runningVariance.value.scalars[channel]) - unbiased) <= 1e-4 * unbiased,
                    "channel \(channel): \(layer.runningVariance.value.scalars[channel]) vs \(unbiased)")
        }
    }

    @Test("Losses: stable for huge logits, log K for equal logits, soft one-hot equals hard labels, 0·log 0 = 0")
    func losses() {
        let huge = Tensor([1e4, -1e4, 0, 5e3, 1e4, 1e4], shape: [2, 3])
        let (loss, gradient) = Losses.softmaxCrossEntropy(logits: huge, labels: [1, 2])
        #expect(loss.isFinite && abs(loss - (2e4 + Float(log(2.0))) / 2) < 1)
        #expect(gradient.scalars.allSatisfy { $0.isFinite })
        #expect(abs(gradient[0, 1] + 0.5) < 1e-6 && abs(gradient[1, 2] + 0.25) < 1e-6 && abs(gradient[1, 1] - 0.25) < 1e-6)

        let equal = Tensor.zeros([3, 5])
        #expect(abs(Losses.softmaxCrossEntropy(logits: equal, labels: [0, 1, 4]).loss - Float(log(5.0))) < 1e-6)
        // Rows of the gradient sum to zero.
        var generator = SeededGenerator(seed: 4)
        let logits = Tensor.normal([4, 6], standardDeviation: 3, generator: &generator)
        let hard = Losses.softmaxCrossEntropy(logits: logits, labels: [0, 5, 2, 2])
        #expect(hard.gradient.sum(alongAxes: [1]).scalars.allSatisfy { abs($0) < 1e-6 })
        var oneHot = Tensor.zeros([4, 6])
        for (row, label) in [0, 5, 2, 2].enumerated() { oneHot[row, label] = 1 }
        let soft = Losses.klDivergence(logits: logits, targets: oneHot)
        #expect(abs(soft.loss - hard.loss) < 1e-5 * hard.loss)
        #expect(soft.gradient.isApproximatelyEqual(to: hard.gradient, relativeTolerance: 1e-5, absoluteTolerance: 1e-7))
        // KL of a distribution to itself is zero; huge logits with soft targets stay finite.
        let target = Tensor([0.7, 0.3, 0], shape: [1, 3])
        let logitsOfTarget = Tensor([log(0.7), log(0.3), -1e4], shape: [1, 3])
        #expect(abs(Losses.klDivergence(logits: logitsOfTarget, targets: target).loss) < 1e-6)
        let kl = Losses.klDivergence(logits: huge, targets: Tensor([0.5, 0.5, 0, 0, 0.2, 0.8], shape: [2, 3]))
        #expect(kl.loss.isFinite && kl.gradient.scalars.allSatisfy { $0.isFinite })
        // Reusing a gradient buffer.
        var buffer = Tensor.zeros([4, 6])
        let value = Losses.softmaxCrossEntropy(logits: logits, labels: [0, 5, 2, 2], gradient: &buffer)
        #expect(value == hard.loss && buffer == hard.gradient)
    }

    @Test("Schedules: multi-step at 80/100/120 ×0.1, linear warm-up composed with it, constant")
    func schedules() {
        let multiStep = LearningRateSchedule.multiStep(milestones: [80, 100, 120], gamma: 0.1)
        let rates = [0, 79, 80, 99, 100, 119, 120, 149].map { multiStep.learningRate(base: 0.01, epoch: Double($0)) }
        let expected: [Float] = [0.01, 0.01, 0.001, 0.001, 0.0001, 0.0001, 0.00001, 0.00001]
        for (rate, want) in zip(rates, expected) { #expect(abs(rate - want) <= 1e-6 * want) }
        #expect(LearningRateSchedule.constant.factor(atEpoch: 1000) == 1)
        let warm = LearningRateSchedule.linearWarmup(epochs: 5, startFactor: 0.1, then: multiStep)
        #expect(abs(warm.factor(atEpoch: 0) - 0.1) < 1e-7)
        #expect(abs(warm.factor(atEpoch: 2.5) - 0.55) < 1e-6)
        #expect(warm.factor(atEpoch: 5) == 1)
        #expect(abs(warm.factor(atEpoch: 85) - 0.1) < 1e-7)
        let nested = LearningRateSchedule.linearWarmup(epochs: 2, startFactor: 0, then: .multiStep(milestones: [1], gamma: 0.5))
        #expect(abs(nested.factor(atEpoch: 1.5) - 0.75 * 0.5) < 1e-7)
        var optimizer = SGD(learningRate: 0.01, momentum: 0.9, nesterov: true, schedule: warm)
        optimizer.epoch = 100
        #expect(abs(optimizer.learningRate - 0.0001) < 1e-9)
    }

    @Test("SGD without momentum is p −= lr·(g + wd·p); momentum follows PyTorch's first-step rule")
    func sgdRules() {
        let parameter = Parameter(Tensor([1, -2]))
        parameter.gradient = Tensor([0.5, 0.25])
        var plain = SGD(learningRate: 0.1, weightDecay: 0.01)
        plain.step(parameters: [(key: "p", parameter: parameter)])
        #expect(parameter.value.isApproximatelyEqual(to: Tensor([1 - 0.1 * (0.5 + 0.01), -2 - 0.1 * (0.25 - 0.02)]), relativeTolerance: 1e-6))

        let q = Parameter(Tensor([1]))
        var heavy = SGD(learningRate: 1, momentum: 0.5, dampening: 0.5)
        q.gradient = Tensor([1]); heavy.step(parameters: [(key: "q", parameter: q)])  // buf = 1 (no dampening on the first step)
        #expect(q.value == Tensor([0]))
        q.gradient = Tensor([1]); heavy.step(parameters: [(key: "q", parameter: q)])  // buf = 0.5 + 0.5 = 1
        #expect(q.value == Tensor([-1]))
        var nesterov = SGD(learningRate: 1, momentum: 0.5, nesterov: true)
        let r = Parameter(Tensor([0]))
        r.gradient = Tensor([2]); nesterov.step(parameters: [(key: "r", parameter: r)])  // buf = 2, d = 2 + 1
        #expect(r.value == Tensor([-3]))
        r.gradient = Tensor([2]); nesterov.step(parameters: [(key: "r", parameter: r)])  // buf = 3, d = 2 + 1.5
        #expect(r.value == Tensor([-6.5]))
    }

    @Test("SGD state saves (Codable and as tensors) and resumes identically")
    func sgdState() throws {
        func makeModel() -> Sequential {
            let model = Sequential(Linear(3, 4), ReLU(), Linear(4, 2))
            var generator = SeededGenerator(seed: 77)
            model.resetParameters(generator: &generator)
            return model
        }
        var generator = SeededGenerator(seed: 78)
        let batches = (0..<4).map { _ in Tensor.normal([5, 3], generator: &generator) }
        func train(_ model: any Layer, _ optimizer: inout SGD, _ range: Range<Int>) {
            for index in range {
                model.zeroGradients()
                let (_, gradient) = Losses.softmaxCrossEntropy(logits: model(batches[index]), labels: [0, 1, 1, 0, 1])
                _ = model.backward(gradient)
                optimizer.step(model)
            }
        }
        let reference = makeModel()
        var referenceOptimizer = SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 5e-4, nesterov: true)
        train(reference, &referenceOptimizer, 0..<4)

        let resumed = makeModel()
        var first = SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 5e-4, nesterov: true)
        train(resumed, &first, 0..<2)
        let data = try JSONEncoder().encode(first.state)
        let decoded = try JSONDecoder().decode(SGDState.self, from: data)
        #expect(decoded == first.state)
        #expect(SGDState(tensors: first.state.tensors, scalars: first.state.scalars) == first.state)
        #expect(first.state.tensors.keys.sorted() == ["momentum_buffer.0.bias", "momentum_buffer.0.weight", "momentum_buffer.2.bias", "momentum_buffer.2.weight"])
        var second = SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 5e-4, nesterov: true)
        second.state = decoded
        #expect(second.stepCount == 2)
        train(resumed, &second, 2..<4)
        #expect(resumed.stateDictionary() == reference.stateDictionary())

        // Without the momentum buffers the result differs: the state matters.
        let fresh = makeModel()
        var noState = SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 5e-4, nesterov: true)
        train(fresh, &noState, 0..<2)
        noState = SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 5e-4, nesterov: true)
        train(fresh, &noState, 2..<4)
        #expect(fresh.stateDictionary() != reference.stateDictionary())
    }

    @Test("Training steps reuse every layer's buffers once the shapes are known")
    func bufferReuse() {
        let model = Sequential(named: [
            "conv1": Conv1d(inputChannels: 1, outputChannels: 4, kernelSize: 5, padding: 2),
            "bn1": BatchNorm1d(featureCount: 4), "relu1": ReLU(), "pool1": MaxPool1d(kernelSize: 4),
            "swap": SwapAxes(1, 2),  // [N, 4, 8] -> [N, 8, 4], a real copy
            "flatten": Flatten(), "fc1": Linear(32, 16), "relu2": ReLU(), "dropout": Dropout(probability: 0.5, seed: 3),
            "fc2": Linear(16, 3),
        ])
        var optimizer = SGD(learningRate: 0.01, momentum: 0.9, nesterov: true)
        var generator = SeededGenerator(seed: 9)
        let input = Tensor.normal([6, 1, 32], generator: &generator)
        var allocations: [Int] = []
        var gradient = Tensor.zeros([0])
        for _ in 0..<4 {
            model.zeroGradients()
            let logits = model(input)
            _ = Losses.softmaxCrossEntropy(logits: logits, labels: [0, 1, 2, 0, 1, 2], gradient: &gradient)
            _ = model.backward(gradient)
            optimizer.step(model)
            allocations.append(model.totalWorkspaceAllocationCount)
        }
        #expect(allocations[0] > 0)
        #expect(allocations[1] == allocations[0] && allocations[3] == allocations[0], "allocations per step: \(allocations)")
        // Evaluation reuses the forward buffers as well.
        model.eval()
        _ = model(input)
        let afterFirstEval = model.totalWorkspaceAllocationCount
        _ = model(input)
        #expect(model.totalWorkspaceAllocationCount == afterFirstEval)
    }
}
