/// Convolution with a horizontal stride `s > 1` as a stride-1 convolution of the input's `s`
/// phases (EnvNet-v2's conv1 and conv2: 1x64 and 1x16 taps, stride 2).
///
/// Tap `j = s·q + r` of output `ow` reads `x[s·ow + j] = x_r[ow + q]`, where `x_r[m] = x[s·m + r]`
/// is phase `r` of the input. Stacking the phases as channels (`[N, s·C, H, W']`) and the taps by
/// phase (`W'[o, r·C + c, i, q] = W[o, c, i, s·q + r]`) turns the strided convolution into a
/// stride-1 one of the same multiply-adds, whose im2col columns are contiguous copies instead of a
/// strided gather, and whose input gradient can run as a convolution too (``Convolution``'s
/// transposed path needs unit stride). Every output is the same sum in another order.
///
/// `[N, C, H, W] x [O, C, kh, kw] -> [N, O, OH, OW]`
enum PolyphaseConvolution {
    /// Whether the rewrite applies: a horizontal stride above 1 that divides the kernel width, no
    /// horizontal padding or dilation, and enough channels for the stride-1 GEMMs to pay.
    static func applies(to p: Convolution.Problem) -> Bool {
        let g = p.geometry
        return ExecutionOptions.current.usesConvolutionRewrites && g.strideWidth > 1 && g.kernelWidth % g.strideWidth == 0
            && g.paddingWidth == 0 && g.dilationWidth == 1 && p.outputWidth >= 1 && p.channels * g.kernelWidth >= 32
    }

    /// The stride-1 problem over the phases.
    static func phaseProblem(_ p: Convolution.Problem) -> Convolution.Problem {
        let g = p.geometry, s = g.strideWidth
        let geometry = ConvolutionGeometry(kernel: (g.kernelHeight, g.kernelWidth / s), stride: (g.strideHeight, 1),
                                           padding: (g.paddingHeight, 0), dilation: (g.dilationHeight, 1))
        return Convolution.Problem(batch: p.batch, channels: s * p.channels, height: p.height, width: p.outputWidth + g.kernelWidth / s - 1,
                                   outputChannels: p.outputChannels, outputHeight: p.outputHeight, outputWidth: p.outputWidth,
                                   geometry: geometry)
    }

    /// `x_r[n, r·C + c, h, m] = x[n, c, h, s·m + r]`. `[N, C, H, W] -> [N, s·C, H, W']`
    static func phases(of input: Tensor, _ p: Convolution.Problem, _ q: Convolution.Problem) -> Tensor {
        let s = p.geometry.strideWidth
        let result = Tensor(uninitializedShape: [q.batch, q.channels, q.height, q.width])
        let input = input.contiguous()
        let source = Address(input), destination = Address(result)
        Parallel.forEach(count: p.batch * p.channels) { plane in
            let image = plane / p.channels, channel = plane % p.channels
            for r in 0..<s {
                for h in 0..<p.height {
                    let from = source.pointer + (plane * p.height + h) * p.width + r
                    let to = destination.pointer + ((image * q.channels + r * p.channels + channel) * q.height + h) * q.width
                    for m in 0..<q.width { to[m] = from[s * m] }
                }
            }
        }
        withExtendedLifetime(input) {}
        return result
    }

    /// `W'[o, r·C + c, i, q] = W[o, c, i, s·q + r]`. `[O, C, kh, kw] -> [O, s·C, kh, kw / s]`
    static func phaseWeights(_ weight: Tensor, _ p: Convolution.Problem) -> Tensor {
        let g = p.geometry, s = g.strideWidth, taps = g.kernelWidth / s
        let values = weight.contiguous().scalars
        var result = [Float](repeating: 0, count: values.count)
        for o in 0..<p.outputChannels {
            for c in 0..<p.channels {
                for i in 0..<g.kernelHeight {
                    for j in 0..<g.kernelWidth {
                        let (q, r) = (j / s, j % s)
                        result[((o * s * p.channels + r * p.channels + c) * g.kernelHeight + i) * taps + q] =
                            values[((o * p.channels + c) * g.kernelHeight + i) * g.kernelWidth + j]
                    }
                }
            }
        }
        return Tensor(result, shape: [p.outputChannels, s * p.channels, g.kernelHeight, taps])
    }

    /// The forward pass into `p.batch · p.outputPlane` contiguous values at `outputBase`.
    static func forward(input: Tensor, weight: Tensor, bias: Tensor?, problem p: Convolution.Problem, output outputBase: Address) {
        let q = phaseProblem(p)
        Convolution.forwardCore(input: phases(of: input, p, q), weight: phaseWeights(weight, p), bias: bias, problem: q, output: outputBase)
    }

    /// The input gradient into `p.batch · p.inputPlane` contiguous values at `gradientInput`.
    static func backwardInput(gradientOutput: Tensor, weight: Tensor, problem p: Convolution.Problem, into gradientInput: UnsafeMutablePointer<Float>) {
        let q = phaseProblem(p), s = p.geometry.strideWidth
        let phaseGradient = Tensor(uninitializedShape: [q.batch, q.channels, q.height, q.width])
        Convolution.backwardInput(gradientOutput: gradientOutput, weight: phaseWeights(weight, p), inputShape: phaseGradient.shape,
                                  geometry: q.geometry, into: Address(phaseGradient).pointer)
        let source = Address(phaseGradient), destination = Address(pointer: gradientInput)
        Parallel.forEach(count: p.batch * p.channels) { plane in
            let image = plane / p.channels, channel = plane % p.channels
            for h in 0..<p.height {
                let to = destination.pointer + (plane * p.height + h) * p.width
                // Columns past the last phase column are read by no output.
                to.update(repeating: 0, count: p.width)
                for r in 0..<s {
                    let from = source.pointer + ((image * q.channels + r * p.channels + channel) * q.height + h) * q.width
                    for m in 0..<q.width { to[s * m + r] = from[m] }
                }
            }
        }
        withExtendedLifetime(phaseGradient) {}
    }

    /// Adds the weight gradient (and the bias gradient when given) of the strided convolution.
    static func backwardWeight(gradientOutput: Tensor, input: Tensor, problem p: Convolution.Problem,
                               weightGradient: inout Tensor, biasGradient: inout Tensor, withBias: Bool) {
        let q = phaseProblem(p), g = p.geometry, s = g.strideWidth, taps = g.kernelWidth / s
        var phaseGradient = Tensor.zeros([p.outputChannels, q.channels, g.kernelHeight, taps])
        Convolution.backwardWeightCore(gradientOutput: gradientOutput, input: phases(of: input, p, q), geometry: q.geometry,
                                       weightGradient: &phaseGradient, biasGradient: &biasGradient, withBias: withBias)
        let values = phaseGradient.scalars
        weightGradient.withUnsafeMutableBufferPointer { destination in
            for o in 0..<p.outputChannels {
                for c in 0..<p.channels {
                    for i in 0..<g.kernelHeight {
                        for j in 0..<g.kernelWidth {
                            destination[((o * p.channels + c) * g.kernelHeight + i) * g.kernelWidth + j] +=
                                values[((o * s * p.channels + (j % s) * p.channels + c) * g.kernelHeight + i) * taps + j / s]
                        }
                    }
                }
            }
        }
    }
}
