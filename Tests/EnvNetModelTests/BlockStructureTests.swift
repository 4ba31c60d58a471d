@testable import EnvNetModel
import Foundation
import Testing

/// The network as typed blocks: every parameter registered, the keys of the interchange
/// convention, one forward loop with a profiler, and execution options set at run time.
@Suite("Typed blocks, registration and execution options")
struct BlockStructureTests {
    /// A module that keeps a parameter and a layer without registering them: what the check must find.
    final class Forgetful: Module, Layer {
        let registered = Parameter(Tensor.ones([2]))
        let forgotten = Parameter(Tensor.ones([2]))
        let hidden: Linear
        let optionalForgotten: Parameter? = Parameter(Tensor.ones([1]))

        override init() {
            var generator = SeededGenerator(seed: 1)
            hidden = Linear(inputCount: 2, outputCount: 2, generator: &generator)
            super.init()
        }

        override var localParameters: [(name: String, parameter: Parameter)] { [("registered", registered)] }
        func forward(_ input: Tensor) -> Tensor { input }
        func backward(_ gradientOutput: Tensor) -> Tensor { gradientOutput }
        func outputShape(forInputShape inputShape: [Int]) throws -> [Int] { inputShape }
    }

    @Test("A stored parameter or module that is not registered is reported")
    func forgottenRegistrationIsFound() {
        let problems = Forgetful().unregisteredMembers()
        #expect(Set(problems) == ["Forgetful.forgotten", "Forgetful.hidden", "Forgetful.optionalForgotten"], "\(problems)")
    }

    @Test("Every module of the library registers every parameter, buffer and child it stores")
    func everyModuleIsRegistered() {
        var generator = SeededGenerator(seed: 3)
        let modules: [Module] = [
            EnvNet(configuration: EnvNetConfiguration(classCount: 4, hiddenUnits: 8), seed: 1),
            EnvNet(configuration: EnvNetConfiguration(variant: .seed, classCount: 4, hiddenUnits: 8), seed: 1),
            EnvNetFrontEnd(generator: &generator),
            ConvolutionBlock(names: ("c", "b", "p"), inputChannels: 2, outputChannels: 3, kernelSize: (1, 3), poolSize: (1, 2), generator: &generator),
            ConvolutionBlock(names: ("c", "b", "p"), inputChannels: 2, outputChannels: 3, kernelSize: (1, 3), generator: &generator),
            Conv2d(inputChannels: 2, outputChannels: 3, kernelSize: (1, 3), generator: &generator),
            Conv1d(inputChannels: 2, outputChannels: 3, kernelSize: 3, generator: &generator),
            Linear(inputCount: 2, outputCount: 3, generator: &generator),
            BatchNorm1d(featureCount: 3), BatchNorm2d(featureCount: 3, affine: false), MaxPool1d(kernelSize: 2), MaxPool2d(kernelSize: 2),
            ReLU(), Dropout(probability: 0.5, seed: 1), Flatten(), SwapAxes(1, 2),
            Sequential(named: [("a", Linear(inputCount: 2, outputCount: 2, generator: &generator)), ("b", ReLU())]),
        ]
        for module in modules {
            #expect(module.unregisteredMembers().isEmpty, "\(module.layerDescription): \(module.unregisteredMembers())")
        }
    }

    @Test("Two blocks whose layers would save under one key are reported")
    func duplicateKeysAreFound() {
        final class Twins: Module, LayerChain {
            let first: ConvolutionBlock, second: ConvolutionBlock
            override init() {
                var generator = SeededGenerator(seed: 1)
                first = ConvolutionBlock(names: ("c", "b", "p"), inputChannels: 1, outputChannels: 2, kernelSize: (1, 3), generator: &generator)
                second = ConvolutionBlock(names: ("c", "b", "p"), inputChannels: 2, outputChannels: 2, kernelSize: (1, 3), generator: &generator)
                super.init()
            }
            var layers: [(name: String, layer: any Layer)] { [("", first), ("", second)] }
            override var children: [(name: String, module: Module)] { layers.map { ($0.name, $0.layer) } }
        }
        let problems = Twins().unregisteredMembers()
        #expect(problems.contains("duplicate key c.weight") && problems.contains("duplicate key b.running_mean"), "\(problems)")
    }

    @Test("The blocks add no level to the keys: EnvNet's are the interchange names, unique, in forward order")
    func keysAreTheInterchangeNames() {
        let net = EnvNet(configuration: EnvNetConfiguration(classCount: 4, hiddenUnits: 8), seed: 1)
        #expect(net.layerNames == ["conv1", "bn1", "conv2", "bn2", "pool2", "swap", "conv3", "bn3", "pool3", "conv4", "bn4", "pool4",
                                   "flatten", "fc5", "relu5", "dropout5", "fc6", "relu6", "dropout6", "fc7"])
        let keys = net.namedParameters().map(\.key) + net.namedBuffers().map(\.key)
        #expect(Set(keys).count == keys.count)
        #expect(net.namedParameters().map(\.key) == ["conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight", "bn2.bias",
                                                     "conv3.weight", "bn3.weight", "bn3.bias", "conv4.weight", "bn4.weight", "bn4.bias",
                                                     "fc5.weight", "fc5.bias", "fc6.weight", "fc6.bias", "fc7.weight", "fc7.bias"])
        // The typed references are the registered layers themselves.
        #expect(net.namedLeaves().first { $0.key == "fc7" }?.module === net.fc7)
        #expect(net.namedLeaves().first { $0.key == "conv1" }?.module === net.frontEnd.conv1)
    }

    @Test("Weights are drawn once from the seed: the same seed gives the same network, another seed another")
    func initialisationIsReproducible() {
        let configuration = EnvNetConfiguration(classCount: 4, hiddenUnits: 8)
        let a = EnvNet(configuration: configuration, seed: 7), b = EnvNet(configuration: configuration, seed: 7)
        let c = EnvNet(configuration: configuration, seed: 8)
        #expect(a.stateDictionary() == b.stateDictionary())
        #expect(a.frontEnd.conv1.weight.value != c.frontEnd.conv1.weight.value)
        #expect(a.fc7.weight.value != c.fc7.weight.value)
    }

    @Test("The one forward loop reports every layer to the profiler, blocks and their layers")
    func profilerSeesEveryLayer() {
        let net = EnvNet(configuration: EnvNetConfiguration(classCount: 4, hiddenUnits: 8), seed: 1)
        var generator = SeededGenerator(seed: 2)
        let input = Tensor.normal([2, 1, 1, 24014], standardDeviation: 0.3, generator: &generator)
        let (logits, samples) = LayerProfiler.record { net(input) }
        #expect(logits.shape == [2, 4])
        let timed = Set(samples.filter { $0.phase == .forward }.map(\.layer))
        for leaf in net.namedLeaves() { #expect(timed.contains(ObjectIdentifier(leaf.module)), "\(leaf.key)") }
        #expect(timed.contains(ObjectIdentifier(net.frontEnd)) && timed.contains(ObjectIdentifier(net.classifier)))
        // Outside `record` nothing is kept.
        #expect(LayerProfiler.record { 0 }.samples.isEmpty)
    }

    @Test("Execution options are set at run time, per task, and the library reads no environment")
    func executionOptionsAreValues() {
        let outer = ExecutionOptions.current
        var two = outer
        two.threadCount = 2
        two.usesWinograd = false
        ExecutionOptions.withOptions(two) {
            #expect(Parallel.workerCount == 2)
            #expect(!ExecutionOptions.current.usesWinograd)
            ExecutionOptions.withOptions(.portable) { #expect(!ExecutionOptions.current.usesFusedOperations) }
            #expect(ExecutionOptions.current == two)
        }
        #expect(ExecutionOptions.current == outer)
        #expect(ExecutionOptions(threadCount: 0).threadCount == 1)
        // With one worker every piece runs on the calling thread, in order.
        var one = outer
        one.threadCount = 1
        ExecutionOptions.withOptions(one) {
            var order: [Int] = []
            Parallel.forEach(count: 5) { order.append($0) }
            #expect(order == [0, 1, 2, 3, 4])
        }
        // With several workers every piece sees the caller's options, on whichever thread it runs
        // (the options are task-local; Dispatch's threads would see the process-wide ones).
        var scoped = outer
        scoped.threadCount = 2
        scoped.precision = outer.precision == .float32 ? .bfloat16 : .float32
        scoped.convolutionTileElements = 4321
        let seen = UnsafeMutableBufferPointer<Bool>.allocate(capacity: 64)
        seen.initialize(repeating: false)
        defer { seen.deallocate() }
        let seenBase = UncheckedSendableFlags(pointer: seen.baseAddress!)
        ExecutionOptions.withOptions(scoped) {
            Parallel.forEach(count: 64) { index in
                Thread.sleep(forTimeInterval: 0.001)
                seenBase.pointer[index] = ExecutionOptions.current == scoped
            }
        }
        #expect(seen.allSatisfy { $0 }, "\(seen.filter { !$0 }.count) of 64 pieces saw other options")
        // A scope never leaks into the process-wide value, even when that is changed inside it.
        ExecutionOptions.withOptions(.portable) {
            let threads = ExecutionOptions.processWide.threadCount
            ExecutionOptions.processWide.threadCount = threads
            #expect(ExecutionOptions.processWide.usesWinograd == outer.usesWinograd)
        }
        #expect(ExecutionOptions.processWide == outer)
    }

    @Test("Winograd on and off give the same convolution; its transformed weights are kept until the weight changes")
    func winogradSwitchAndCache() throws {
        var generator = SeededGenerator(seed: 4)
        let layer = Conv2d(inputChannels: 40, outputChannels: 40, kernelSize: (1, 8), bias: false, weightInitializer: .heNormal,
                           generator: &generator)
        layer.eval()
        let input = Tensor.normal([2, 40, 1, 300], generator: &generator)
        let fast = layer(input)
        let plain = ExecutionOptions.withOptions(.portable) { layer(input) }
        var difference: Float = 0, scale: Float = 0
        for (a, b) in zip(fast.scalars, plain.scalars) { difference = max(difference, abs(a - b)); scale = max(scale, abs(b)) }
        #expect(difference <= 1e-4 * scale, "\(difference) at scale \(scale)")
        #expect((fast.scalars != plain.scalars) == WinogradConvolution.isSupported, "Winograd's arithmetic differs in the last bits")
        // The transform is kept on every machine; the kernel that reads it needs AVX-512.
        let before = layer.derivedWeightBuildCount
        _ = layer(input)
        let kept = try #require(layer.winogradWeights())
        _ = layer(input)
        #expect(layer.derivedWeightBuildCount == before, "the cache is reused")
        #expect(kept == WinogradConvolution.TransformedWeights(layer.weight.value))
        layer.weight.value = layer.weight.value * 2
        let doubled = layer(input)
        #expect(layer.winogradWeights() == WinogradConvolution.TransformedWeights(layer.weight.value), "a new weight is transformed")
        #expect(layer.winogradWeights() != kept)
        for (a, b) in zip(doubled.scalars, fast.scalars) { #expect(abs(a - 2 * b) <= 1e-4 * scale) }
    }
}

/// Flags written by parallel pieces at distinct indices.
private struct UncheckedSendableFlags: @unchecked Sendable { let pointer: UnsafeMutablePointer<Bool> }
