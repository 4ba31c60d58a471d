import Foundation
import Testing
@testable import EnvNetLayers

/// Agreement with PyTorch (fixtures from `Tools/make_layer_fixtures.py`, references in float64),
/// within `expectClose`'s tolerance: |a − b| ≤ 1e-4 · max(|b|, 1e-2 · max|b|, 1e-6).
@Suite("PyTorch fixtures")
struct FixtureTests {
    func pair(_ values: [Int]) -> (Int, Int) { values.count == 1 ? (1, values[0]) : (values[0], values[1]) }

    func runConvolution(_ name: String) throws {
        let f = try Fixture.load(name)
        let weight = f["weight"]
        let module: any Layer
        let parameters: (weight: Parameter, bias: Parameter?)
        let (kernel, stride, padding, dilation) = (f.ints("kernel"), f.ints("stride"), f.ints("padding"), f.ints("dilation"))
        if weight.rank == 3 {
            let conv = Conv1d(inputChannels: weight.shape[1], outputChannels: weight.shape[0], kernelSize: kernel[0],
                              stride: stride[0], padding: padding[0], dilation: dilation[0], bias: f.bool("bias"))
            module = conv
            parameters = (conv.weight, conv.bias)
        } else {
            let conv = Conv2d(inputChannels: weight.shape[1], outputChannels: weight.shape[0], kernelSize: pair(kernel),
                              stride: pair(stride), padding: pair(padding), dilation: pair(dilation), bias: f.bool("bias"))
            module = conv
            parameters = (conv.weight, conv.bias)
        }
        parameters.weight.value = weight
        if let bias = parameters.bias { bias.value = f["bias"] }
        #expect((parameters.bias != nil) == f.bool("bias"))
        module.zeroGradients()
        let output = module(f["input"])
        expectClose(output, f["output"], "\(name) output")
        let gradientInput = module.backward(f["upstream"])
        expectClose(gradientInput, f["grad_input"], "\(name) input gradient")
        expectClose(parameters.weight.gradient, f["grad_weight"], "\(name) weight gradient")
        if let bias = parameters.bias { expectClose(bias.gradient, f["grad_bias"], "\(name) bias gradient") }
        // Evaluation mode gives the same output.
        module.eval()
        expectClose(module(f["input"]), f["output"], "\(name) evaluation output")
    }

    @Test("Conv1d with stride, padding, dilation and bias matches PyTorch")
    func conv1d() throws { try runConvolution("conv1d") }

    @Test("Conv1d without bias matches PyTorch")
    func conv1dNoBias() throws { try runConvolution("conv1d_nobias") }

    @Test("Conv2d with stride, padding, dilation and bias matches PyTorch")
    func conv2d() throws { try runConvolution("conv2d") }

    @Test("Conv2d without bias matches PyTorch")
    func conv2dNoBias() throws { try runConvolution("conv2d_nobias") }

    @Test("BatchNorm training and evaluation match PyTorch", arguments: ["batchnorm1d_2d", "batchnorm1d_3d", "batchnorm2d"])
    func batchNorm(name: String) throws {
        let f = try Fixture.load(name)
        let channels = f["weight"].count
        let layer: BatchNorm = name == "batchnorm2d" ? BatchNorm2d(featureCount: channels) : BatchNorm1d(featureCount: channels)
        try layer.loadStateDictionary([
            "weight": f["weight"], "bias": f["bias"],
            "running_mean": f["running_mean_before"], "running_var": f["running_var_before"],
        ])
        let output = layer(f["input"])
        expectClose(output, f["output"], "\(name) output")
        expectClose(layer.runningMean.value, f["running_mean_after"], "\(name) running mean")
        expectClose(layer.runningVariance.value, f["running_var_after"], "\(name) running variance")
        let gradientInput = layer.backward(f["upstream"])
        expectClose(gradientInput, f["grad_input"], "\(name) input gradient")
        expectClose(layer.weight!.gradient, f["grad_weight"], "\(name) weight gradient")
        expectClose(layer.bias!.gradient, f["grad_bias"], "\(name) bias gradient")
        layer.eval()
        expectClose(layer(f["eval_input"]), f["eval_output"], "\(name) evaluation output")
        // Evaluation leaves the running statistics alone.
        expectClose(layer.runningMean.value, f["running_mean_after"], "\(name) running mean after evaluation")
    }

    @Test("MaxPool1d and MaxPool2d match PyTorch", arguments: ["maxpool1d", "maxpool2d", "maxpool2d_dilated"])
    func maxPool(name: String) throws {
        let f = try Fixture.load(name)
        let (kernel, stride, padding, dilation) = (f.ints("kernel"), f.ints("stride"), f.ints("padding"), f.ints("dilation"))
        let layer: any Layer = kernel.count == 1
            ? MaxPool1d(kernelSize: kernel[0], stride: stride[0], padding: padding[0], dilation: dilation[0])
            : MaxPool2d(kernelSize: pair(kernel), stride: pair(stride), padding: pair(padding), dilation: pair(dilation))
        #expect(layer(f["input"]) == f["output"])  // exact: a maximum is one of the inputs
        // Overlapping windows add several output gradients into one input position.
        expectClose(layer.backward(f["upstream"]), f["grad_input"], "\(name) input gradient")
    }

    @Test("Linear matches PyTorch")
    func linear() throws {
        let f = try Fixture.load("linear")
        let layer = Linear(inputCount: 7, outputCount: 3)
        try layer.loadStateDictionary(["weight": f["weight"], "bias": f["bias"]])
        layer.zeroGradients()
        expectClose(layer(f["input"]), f["output"], "linear output")
        expectClose(layer.backward(f["upstream"]), f["grad_input"], "linear input gradient")
        expectClose(layer.weight.gradient, f["grad_weight"], "linear weight gradient")
        expectClose(layer.bias!.gradient, f["grad_bias"], "linear bias gradient")
    }

    @Test("ReLU matches PyTorch")
    func relu() throws {
        let f = try Fixture.load("relu")
        let layer = ReLU()
        #expect(layer(f["input"]) == f["output"])
        #expect(layer.backward(f["upstream"]) == f["grad_input"])
    }

    @Test("Cross-entropy on labels matches PyTorch", arguments: ["cross_entropy_hard", "cross_entropy_large"])
    func hardCrossEntropy(name: String) throws {
        let f = try Fixture.load(name)
        let (loss, gradient) = Losses.softmaxCrossEntropy(logits: f["logits"], labels: f.ints("labels"))
        expectClose(Tensor(scalar: loss).reshaped([1]), f["loss"], "\(name) loss")
        expectClose(gradient, f["grad_logits"], "\(name) gradient")
    }

    @Test("KL divergence to soft targets matches PyTorch")
    func softCrossEntropy() throws {
        let f = try Fixture.load("cross_entropy_soft")
        let (loss, gradient) = Losses.klDivergence(logits: f["logits"], targets: f["targets"])
        expectClose(Tensor(scalar: loss).reshaped([1]), f["loss"], "soft loss")
        expectClose(gradient, f["grad_logits"], "soft gradient")
    }

    @Test("Three SGD steps (momentum 0.9, Nesterov, weight decay 5e-4, milestones [1, 2]) match PyTorch")
    func sgd() throws {
        let f = try Fixture.load("sgd")
        let model = Sequential(Linear(4, 6), BatchNorm1d(featureCount: 6), ReLU(), Linear(6, 3))
        var initial: [String: Tensor] = [:]
        for (key, value) in f.tensors where key.hasPrefix("initial.") { initial[String(key.dropFirst(8))] = value }
        try model.loadStateDictionary(initial)
        var optimizer = SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 5e-4, nesterov: true,
                            schedule: .multiStep(milestones: [1, 2], gamma: 0.1))
        let labels = (f.params["labels"] as! [[Any]]).map { $0.map { ($0 as! NSNumber).intValue } }
        let expectedLosses = f.doubles("losses"), expectedRates = f.doubles("learning_rates")
        for step in 0..<3 {
            optimizer.epoch = Double(step)
            #expect(abs(Double(optimizer.learningRate) - expectedRates[step]) <= 1e-6 * expectedRates[step])
            model.zeroGradients()
            let logits = model(f["input\(step)"])
            let (loss, gradient) = Losses.softmaxCrossEntropy(logits: logits, labels: labels[step])
            #expect(abs(Double(loss) - expectedLosses[step]) <= 1e-4 * abs(expectedLosses[step]), "step \(step) loss \(loss)")
            _ = model.backward(gradient)
            optimizer.step(model)
        }
        #expect(optimizer.stepCount == 3)
        let state = model.stateDictionary()
        for (key, value) in state { expectClose(value, f["final." + key], "final \(key)") }
        // The bias of the Linear before BatchNorm has a true gradient of 0 (BatchNorm removes the mean), so its
        // momentum is weight decay times the bias plus float32 rounding noise of ~1e-9: an absolute floor of
        // 1e-4 · 1e-3 = 1e-7 covers that noise and nothing else.
        for entry in model.namedParameters() {
            expectClose(try #require(optimizer.momentumBuffer(forKey: entry.key)), f["momentum." + entry.key],
                        absoluteFloor: 1e-3, "momentum \(entry.key)")
        }
    }

    @Test("An EnvNet-like composition with named children matches PyTorch, including the axis swap")
    func composite() throws {
        let f = try Fixture.load("composite")
        let model = Sequential(named: [
            "conv1": Conv2d(inputChannels: 1, outputChannels: 3, kernelSize: (1, 4), bias: false),
            "bn1": BatchNorm2d(featureCount: 3),
            "relu1": ReLU(),
            "pool1": MaxPool2d(kernelSize: (1, 3)),
            "swap": SwapAxes(1, 2),
            "conv2": Conv2d(inputChannels: 1, outputChannels: 2, kernelSize: (2, 3)),
            "relu2": ReLU(),
            "flatten": Flatten(),
            "fc": Linear(12, 4),
        ])
        #expect(try model.outputShape(forInputShape: [2, 1, 1, 20]) == [2, 4])
        var state = model.stateDictionary()
        for key in state.keys where !key.hasPrefix("bn1.running") { state[key] = f[key] }
        try model.loadStateDictionary(state)
        model.zeroGradients()
        expectClose(model(f["input"]), f["output"], "composite output")
        expectClose(model.backward(f["upstream"]), f["grad_input"], "composite input gradient")
        for entry in model.namedParameters() {
            expectClose(entry.parameter.gradient, f["grad." + entry.key], "composite gradient \(entry.key)")
        }
        expectClose(model.stateDictionary()["bn1.running_mean"]!, f["bn1.running_mean"], "composite running mean")
        expectClose(model.stateDictionary()["bn1.running_var"]!, f["bn1.running_var"], "composite running variance")
    }
}
