import Foundation
import Testing
@testable import EnvNetLayers

/// The module abstraction: keys, buffers, modes, counts, descriptions, state dictionaries, shapes.
@Suite("Module abstraction")
struct ModuleTests {
    /// The EnvNet layer stack with the official sizes, but a short input so that it stays cheap.
    func envNetLike(classes: Int = 50) -> Sequential {
        Sequential(named: [
            "conv1": Conv2d(inputChannels: 1, outputChannels: 40, kernelSize: (1, 8), bias: false, weightInitializer: .heNormal),
            "bn1": BatchNorm2d(featureCount: 40), "relu1": ReLU(),
            "conv2": Conv2d(inputChannels: 40, outputChannels: 40, kernelSize: (1, 8), bias: false, weightInitializer: .heNormal),
            "bn2": BatchNorm2d(featureCount: 40), "relu2": ReLU(),
            "pool2": MaxPool2d(kernelSize: (1, 160)),
            "swap": SwapAxes(1, 2),
            "conv3": Conv2d(inputChannels: 1, outputChannels: 50, kernelSize: (8, 13), bias: false, weightInitializer: .heNormal),
            "bn3": BatchNorm2d(featureCount: 50), "relu3": ReLU(),
            "pool3": MaxPool2d(kernelSize: 3),
            "conv4": Conv2d(inputChannels: 50, outputChannels: 50, kernelSize: (1, 5), bias: false, weightInitializer: .heNormal),
            "bn4": BatchNorm2d(featureCount: 50), "relu4": ReLU(),
            "pool4": MaxPool2d(kernelSize: (1, 3)),
            "flatten": Flatten(),
            "fc5": Linear(7700, 4096, weightInitializer: .heNormal), "relu5": ReLU(), "dropout5": Dropout(),
            "fc6": Linear(4096, 4096, weightInitializer: .heNormal), "relu6": ReLU(), "dropout6": Dropout(),
            "fc7": Linear(4096, classes, weightInitializer: .heNormal),
        ])
    }

    @Test("EnvNet's keys, shapes, parameter count and output shape")
    func envNetKeys() throws {
        let model = envNetLike()
        let shapes = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.key, $0.parameter.shape) })
        #expect(model.namedParameters().map(\.key) == [
            "conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight", "bn2.bias", "conv3.weight", "bn3.weight", "bn3.bias",
            "conv4.weight", "bn4.weight", "bn4.bias", "fc5.weight", "fc5.bias", "fc6.weight", "fc6.bias", "fc7.weight", "fc7.bias",
        ])
        #expect(shapes["conv1.weight"] == [40, 1, 1, 8])
        #expect(shapes["conv3.weight"] == [50, 1, 8, 13])
        #expect(shapes["fc5.weight"] == [4096, 7700])
        #expect(model.namedBuffers().map(\.key) == [
            "bn1.running_mean", "bn1.running_var", "bn2.running_mean", "bn2.running_var",
            "bn3.running_mean", "bn3.running_var", "bn4.running_mean", "bn4.running_var",
        ])
        let expected = 40 * 8 + 40 * 40 * 8 + 50 * 8 * 13 + 50 * 50 * 5 + 2 * (40 + 40 + 50 + 50)
            + 7700 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 50 + 50
        #expect(model.parameterCount == expected)
        #expect(model.parameterCount > 48_500_000 && model.parameterCount < 48_700_000)
        #expect(model.bufferElementCount == 2 * (40 + 40 + 50 + 50))
        #expect(try model.outputShape(forInputShape: [64, 1, 1, 24014]) == [64, 50])
        #expect(try model.outputShape(forInputShape: [2, 1, 1, 24014]).count == 2)
        #expect(throws: LayerError.self) { try model.outputShape(forInputShape: [64, 2, 1, 24014]) }
        let fc5 = try #require(model.layers.first { $0.name == "fc5" }?.layer as? Linear)
        #expect(fc5.outputCount == 4096)
        // He normal: standard deviation √(2 / fan-in).
        let weights = fc5.weight.value.scalars
        let variance = weights.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(weights.count)
        #expect(abs(variance.squareRoot() - (2.0 / 7700).squareRoot()) < 0.01 * (2.0 / 7700).squareRoot())
    }

    @Test("A parameter's version moves with every write, and writing in place keeps its storage")
    func parameterVersions() {
        let parameter = Parameter(Tensor.zeros([4096]))
        let address = parameter.value.withUnsafeBufferPointer { $0.baseAddress }
        let start = parameter.version
        // What SGD does: make the value unique, then write through its storage.
        parameter.value.makeContiguousAndUnique()
        parameter.value.withUnsafeMutableBufferPointer { $0[0] = 1 }
        #expect(parameter.value.withUnsafeBufferPointer { $0.baseAddress } == address, "an in-place write must not copy the weights")
        #expect(parameter.version == start + 2)
        parameter.value = Tensor.ones([4096])
        #expect(parameter.version == start + 3)
        let buffer = Buffer(Tensor.zeros([3]))
        buffer.value.makeContiguousAndUnique()
        #expect(buffer.version == 1)
    }

    @Test("Unnamed Sequential children are keyed by index, as in PyTorch")
    func indexKeys() {
        let model = Sequential(Linear(2, 3), ReLU(), Sequential(Linear(3, 1, bias: false)))
        #expect(model.namedParameters().map(\.key) == ["0.weight", "0.bias", "2.0.weight"])
        #expect(model.namedModules().map(\.key) == ["", "0", "1", "2", "2.0"])
        model.append(BatchNorm1d(featureCount: 1), named: "bn")
        #expect(model.stateDictionary().keys.sorted() == ["0.bias", "0.weight", "2.0.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.weight"])
        #expect(model.count == 4)
        #expect(model[3] is BatchNorm1d)
    }

    @Test("Training and evaluation modes switch recursively")
    func modes() {
        let inner = Sequential(Dropout(), BatchNorm1d(featureCount: 2))
        let model = Sequential(Linear(2, 2), inner)
        #expect(model.namedModules().allSatisfy { $0.module.isTraining })
        model.eval()
        #expect(model.namedModules().allSatisfy { !$0.module.isTraining })
        model.train()
        #expect(model.namedModules().allSatisfy { $0.module.isTraining })
        inner.eval()
        #expect(model.isTraining && !inner[0].isTraining && !inner[1].isTraining)
    }

    @Test("Buffers are kept apart from parameters, receive no gradient and are not touched by SGD")
    func buffersApart() {
        let model = Sequential(named: ["fc": Linear(3, 2), "bn": BatchNorm1d(featureCount: 2)])
        #expect(model.parameters().count == 4)
        #expect(model.namedBuffers().count == 2)
        var generator = SeededGenerator(seed: 3)
        let input = Tensor.normal([5, 3], generator: &generator)
        model.eval()
        let before = model.namedBuffers().map(\.buffer.value)
        var optimizer = SGD(learningRate: 0.5, momentum: 0.9, weightDecay: 0.1)
        model.zeroGradients()
        model.train()
        _ = model.backward(model(input))
        let runningAfterForward = model.namedBuffers().map(\.buffer.value)
        optimizer.step(model)
        #expect(model.namedBuffers().map(\.buffer.value) == runningAfterForward)  // SGD leaves buffers alone
        #expect(runningAfterForward != before)  // the training forward moved them
        #expect(optimizer.momentumBuffer(forKey: "bn.running_mean") == nil)
        #expect(optimizer.momentumBuffer(forKey: "bn.weight") != nil)
    }

    @Test("Gradients accumulate over backward passes until zeroed")
    func accumulateAndZero() {
        let layer = Linear(2, 1)
        let input = Tensor([1, 2, 3, 4], shape: [2, 2])
        let upstream = Tensor([1, 1], shape: [2, 1])
        layer.zeroGradients()
        _ = layer(input); _ = layer.backward(upstream)
        #expect(layer.weight.gradient == Tensor([4, 6], shape: [1, 2]))
        #expect(layer.bias!.gradient == Tensor([2]))
        _ = layer(input); _ = layer.backward(upstream)
        #expect(layer.weight.gradient == Tensor([8, 12], shape: [1, 2]))
        layer.zeroGradients()
        #expect(layer.namedGradients()["weight"] == Tensor([0, 0], shape: [1, 2]))
        #expect(layer.namedGradients()["bias"] == Tensor([0]))
    }

    @Test("The description reads like PyTorch's, and the summary lists keys, shapes and totals")
    func descriptions() {
        let model = Sequential(named: [
            "conv1": Conv2d(inputChannels: 1, outputChannels: 40, kernelSize: (1, 8), bias: false),
            "bn1": BatchNorm2d(featureCount: 40),
            "block": Sequential(ReLU(), MaxPool1d(kernelSize: 3)),
            "fc": Linear(10, 2),
        ])
        #expect(model.description == """
            Sequential(
              (conv1): Conv2d(1, 40, kernelSize: (1, 8), stride: (1, 1), bias: false)
              (bn1): BatchNorm2d(40, epsilon: 1e-05, momentum: 0.1)
              (block): Sequential(
                (0): ReLU()
                (1): MaxPool1d(kernelSize: 3, stride: 3)
              )
              (fc): Linear(inputCount: 10, outputCount: 2)
            )
            """)
        let summary = model.parameterSummary
        #expect(summary.contains("conv1.weight"))
        #expect(summary.contains("[40, 1, 1, 8]"))
        #expect(summary.contains("bn1.running_var (buffer)"))
        #expect(summary.hasSuffix("trainable parameters: \(320 + 80 + 22), buffer elements: 80"))
        #expect(Conv1d(inputChannels: 2, outputChannels: 3, kernelSize: 5, stride: 2, padding: 2, dilation: 3).description
                == "Conv1d(2, 3, kernelSize: 5, stride: 2, padding: 2, dilation: 3)")
    }

    @Test("State dictionaries round-trip and are validated before anything is loaded")
    func stateDictionary() throws {
        let source = Sequential(named: ["fc": Linear(3, 2), "bn": BatchNorm1d(featureCount: 2)])
        let target = Sequential(named: ["fc": Linear(3, 2), "bn": BatchNorm1d(featureCount: 2)])
        var generator = SeededGenerator(seed: 11)
        source.resetParameters(generator: &generator)
        source.namedBuffers()[0].buffer.value = Tensor([0.5, -0.5])
        #expect(source.stateDictionary()["fc.weight"] != target.stateDictionary()["fc.weight"])
        try target.loadStateDictionary(source.stateDictionary())
        #expect(target.stateDictionary() == source.stateDictionary())

        var missing = source.stateDictionary()
        missing["bn.running_var"] = nil
        #expect(throws: LayerError.missingKey("bn.running_var")) { try target.loadStateDictionary(missing) }
        var wrong = source.stateDictionary()
        wrong["fc.weight"] = Tensor.zeros([2, 4])
        #expect(throws: LayerError.shapeMismatch(key: "fc.weight", expected: [2, 3], actual: [2, 4])) { try target.loadStateDictionary(wrong) }
        var extra = source.stateDictionary()
        extra["bn.num_batches_tracked"] = Tensor(scalar: 3)
        #expect(throws: LayerError.unexpectedKey("bn.num_batches_tracked")) { try target.loadStateDictionary(extra) }
        try target.loadStateDictionary(extra, strict: false)
        // A failed load changes nothing.
        #expect(target.stateDictionary() == source.stateDictionary())
    }

    @Test("Wrong input shapes are reported with the layer, the expected and the actual shape")
    func shapeErrors() throws {
        let conv = Conv2d(inputChannels: 3, outputChannels: 4, kernelSize: 3)
        do {
            _ = try conv.outputShape(forInputShape: [2, 5, 8, 8])
            Issue.record("expected an error")
        } catch let error as LayerError {
            #expect(error.description == "Conv2d(3, 4, kernelSize: (3, 3), stride: (1, 1)): expected input [N, 3, H, W] with H, W at least the kernel span (kernel 3x3, stride 1x1, padding 0x0, dilation 1x1), got [2, 5, 8, 8]")
        } catch {
            Issue.record("unexpected \(error)")
        }
        #expect(throws: LayerError.self) { try conv.outputShape(forInputShape: [2, 3, 2, 8]) }
        #expect(throws: LayerError.self) { try BatchNorm2d(featureCount: 3).outputShape(forInputShape: [2, 3, 4]) }
        #expect(throws: LayerError.self) { try BatchNorm1d(featureCount: 3).outputShape(forInputShape: [2, 4]) }
        #expect(throws: LayerError.self) { try Linear(3, 2).outputShape(forInputShape: [2, 4]) }
        #expect(try Conv1d(inputChannels: 1, outputChannels: 40, kernelSize: 8, padding: 4).outputShape(forInputShape: [3, 1, 24000]) == [3, 40, 24001])
        #expect(try MaxPool1d(kernelSize: 160).outputShape(forInputShape: [3, 40, 24000]) == [3, 40, 150])
        #expect(try Flatten().outputShape(forInputShape: [3, 50, 11, 14]) == [3, 7700])
        #expect(try SwapAxes(1, 2).outputShape(forInputShape: [3, 40, 1, 150]) == [3, 1, 40, 150])
    }

    @Test("Initializers: He, Xavier, PyTorch default, constant; seeded and reproducible")
    func initializers() {
        var generator = SeededGenerator(seed: 5)
        let shape = [256, 64, 3, 3]  // fan-in 576, fan-out 2304
        func stats(_ t: Tensor) -> (mean: Double, std: Double, maxAbs: Float) {
            let values = t.scalars.map(Double.init)
            let mean = values.reduce(0, +) / Double(values.count)
            let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
            return (mean, variance.squareRoot(), t.scalars.map(abs).max()!)
        }
        #expect(Initializer.fans(forWeightShape: shape) == (576, 2304))
        #expect(Initializer.fans(forWeightShape: [10, 7]) == (7, 10))
        let he = stats(Initializer.heNormal.makeTensor(shape: shape, generator: &generator))
        #expect(abs(he.mean) < 0.002 && abs(he.std - (2.0 / 576).squareRoot()) < 0.01 * (2.0 / 576).squareRoot())
        let heUniform = stats(Initializer.heUniform.makeTensor(shape: shape, generator: &generator))
        #expect(heUniform.maxAbs <= Float((6.0 / 576).squareRoot()) && heUniform.maxAbs > 0.99 * Float((6.0 / 576).squareRoot()))
        #expect(abs(heUniform.std - (2.0 / 576).squareRoot()) < 0.01 * (2.0 / 576).squareRoot())
        let xavier = stats(Initializer.xavierNormal.makeTensor(shape: shape, generator: &generator))
        #expect(abs(xavier.std - (2.0 / 2880).squareRoot()) < 0.01 * (2.0 / 2880).squareRoot())
        let xavierUniform = stats(Initializer.xavierUniform.makeTensor(shape: shape, generator: &generator))
        #expect(xavierUniform.maxAbs <= Float((6.0 / 2880).squareRoot()) && xavierUniform.maxAbs > 0.99 * Float((6.0 / 2880).squareRoot()))
        let torchDefault = stats(Initializer.pytorchDefault.makeTensor(shape: shape, generator: &generator))
        #expect(torchDefault.maxAbs <= Float(1 / 576.0.squareRoot()) && torchDefault.maxAbs > 0.99 * Float(1 / 576.0.squareRoot()))
        #expect(Initializer.constant(0.25).makeTensor(shape: [2, 2], generator: &generator) == Tensor.filled(0.25, shape: [2, 2]))
        // A bias drawn with its weight's fans.
        let bias = Initializer.pytorchDefault.makeTensor(shape: [1000], fans: (4, 1), generator: &generator)
        #expect(bias.scalars.allSatisfy { abs($0) <= 0.5 } && bias.scalars.contains { abs($0) > 0.45 })

        // resetParameters(generator:) is reproducible and independent of the global generator.
        let first = Sequential(Conv1d(inputChannels: 2, outputChannels: 3, kernelSize: 4), Linear(3, 2))
        let second = Sequential(Conv1d(inputChannels: 2, outputChannels: 3, kernelSize: 4), Linear(3, 2))
        var a = SeededGenerator(seed: 42), b = SeededGenerator(seed: 42)
        first.resetParameters(generator: &a)
        second.resetParameters(generator: &b)
        #expect(first.stateDictionary() == second.stateDictionary())
        #expect(first.stateDictionary()["0.weight"]!.scalars.allSatisfy { abs($0) <= 1 / Float(8).squareRoot() })
    }
}
