import EnvNetLayers

/// EnvNet's layers conv1 … pool2 in evaluation mode as one fused pass (the operation is
/// `FusedFrontEndKernel` in EnvNetTensor; its C kernel is `Sources/CEnvNetSupport/FrontEnd.c`).
///
/// Layer by layer, these five layers write and re-read four activations of 40 x 24000 floats per
/// window, and conv2 is most of an inference's arithmetic. The fused pass folds BatchNorm's running
/// statistics into the convolutions, runs conv2 as a Winograd F(4, 8) correlation (2.9x fewer
/// multiply-adds in its channel products) and takes each group of pooling cells from audio to
/// pooled values inside the cache. Its results equal the layers' to float rounding (the tests
/// compare both paths and the PyTorch fixtures).
///
/// It runs only where its kernel does (x86-64 with AVX-512) and for the shapes it was written for
/// (two 1x8 convolutions of 40 channels with equal padding, no stride or dilation, pooling cells
/// of a multiple of 4); ``EnvNet`` falls back to the layers everywhere else.
struct FusedFrontEnd {
    /// Whether this machine runs the fused kernel.
    static let isAvailable = FusedFrontEndKernel.isAvailable

    /// Set `ENVNET_FUSED_FRONT_END=0` to run the layers instead (for comparisons).
    static let isEnabled = EnvironmentSwitch.isOn("ENVNET_FUSED_FRONT_END")

    let conv1Weights: [Float]
    let conv1Shift: [Float]
    let conv2Transformed: [Float]
    let conv2Shift: [Float]
    let inputChannels: Int
    let outputChannels: Int
    let padding: Int
    let poolSize: Int

    /// The folded weights of `network`, or nil when its layers are not the shapes the kernel handles.
    init?(network: EnvNet) {
        let layers = network.layers
        guard let conv1 = layers["conv1"] as? Conv2d, let bn1 = layers["bn1"] as? BatchNorm,
              let conv2 = layers["conv2"] as? Conv2d, let bn2 = layers["bn2"] as? BatchNorm,
              let pool2 = layers["pool2"] as? MaxPool2d,
              bn1.fusedReLU, bn2.fusedReLU, !bn1.isTraining, !bn2.isTraining,
              conv1.inputChannels == 1, conv1.outputChannels == conv2.inputChannels,
              bn1.featureCount == conv1.outputChannels, bn2.featureCount == conv2.outputChannels,
              conv2.outputChannels % 20 == 0
        else { return nil }
        for geometry in [conv1.geometry, conv2.geometry] {
            guard geometry.kernelHeight == 1, geometry.kernelWidth == 8, geometry.strideHeight == 1, geometry.strideWidth == 1,
                  geometry.paddingHeight == 0, geometry.dilationHeight == 1, geometry.dilationWidth == 1
            else { return nil }
        }
        let pool = pool2.geometry
        guard conv1.geometry.paddingWidth == conv2.geometry.paddingWidth,
              pool.kernelHeight == 1, pool.strideHeight == 1, pool.paddingHeight == 0, pool.paddingWidth == 0,
              pool.dilationHeight == 1, pool.dilationWidth == 1,
              pool.kernelWidth == pool.strideWidth, pool.kernelWidth % 4 == 0
        else { return nil }
        inputChannels = conv1.outputChannels
        outputChannels = conv2.outputChannels
        padding = conv1.geometry.paddingWidth
        poolSize = pool.kernelWidth

        let (scale1, shift1) = Self.fold(bn1, convolutionBias: conv1.bias?.value)
        let (scale2, shift2) = Self.fold(bn2, convolutionBias: conv2.bias?.value)
        // Weights are [O, C, 1, 8]: scaling output channel o's 8 C taps by its BatchNorm scale.
        let w1 = conv1.weight.value.scalars, w2 = conv2.weight.value.scalars
        conv1Weights = (0..<w1.count).map { w1[$0] * scale1[$0 / 8] }
        let taps = inputChannels * 8
        let folded2 = (0..<w2.count).map { w2[$0] * scale2[$0 / taps] }
        conv2Transformed = FusedFrontEndKernel.transformWeights(folded2, outputChannels: outputChannels, inputChannels: inputChannels)
        conv1Shift = shift1
        conv2Shift = shift2
    }

    /// BatchNorm in evaluation mode as `scale * x + shift` per channel, with the convolution's bias
    /// (if any) moved into the shift: `BN(conv + b) = s conv + (beta + s (b - mean))`.
    private static func fold(_ norm: BatchNorm, convolutionBias: Tensor?) -> (scale: [Float], shift: [Float]) {
        let mean = norm.runningMean.value.scalars, variance = norm.runningVariance.value.scalars
        let gamma = norm.weight?.value.scalars, beta = norm.bias?.value.scalars
        let bias = convolutionBias?.scalars
        var scale = [Float](repeating: 1, count: norm.featureCount), shift = [Float](repeating: 0, count: norm.featureCount)
        for channel in 0..<norm.featureCount {
            // The same arithmetic as BatchNorm's evaluation mode.
            let s = (gamma?[channel] ?? 1) / (variance[channel] + norm.epsilon).squareRoot()
            scale[channel] = s
            shift[channel] = (beta?[channel] ?? 0) + ((bias?[channel] ?? 0) - mean[channel]) * s
        }
        return (scale, shift)
    }

    /// pool2's output for a batch of windows, or nil when the kernel declines the sizes.
    /// `[N, 1, 1, L] -> [N, C2, 1, cells]`
    func forward(_ input: Tensor) -> Tensor? {
        // Anything but [N, 1, 1, L] goes to the layers, which check it and say what is wrong.
        FusedFrontEndKernel.forward(input, conv1Weights: conv1Weights, conv1Shift: conv1Shift, conv2Transformed: conv2Transformed,
                                    conv2Shift: conv2Shift, inputChannels: inputChannels, outputChannels: outputChannels,
                                    padding: padding, poolSize: poolSize)
    }
}
