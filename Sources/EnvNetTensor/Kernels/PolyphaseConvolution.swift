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

    /// Writes the phases of image `image`: `x_r[r·C + c, h, m] = x[image, c, h, s·m + r]`.
    /// `[C, H, W] -> [s·C, H, W']` into `phases` (`q.channels · q.height · q.width` values)
    static func writePhases(of input: Address, image: Int, _ p: Convolution.Problem, _ q: Convolution.Problem, into phases: Address) {
        let s = p.geometry.strideWidth
        Parallel.forEach(count: p.channels) { channel in
            for r in 0..<s {
                for h in 0..<p.height {
                    let from = input.pointer + ((image * p.channels + channel) * p.height + h) * p.width + r
                    let to = phases.pointer + ((r * p.channels + channel) * q.height + h) * q.width
                    for m in 0..<q.width { to[m] = from[s * m] }
                }
            }
        }
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

    /// The forward pass into `p.batch · p.outputPlane` contiguous values at `outputBase`, image by
    /// image through one phase buffer (a whole batch of phases would double the input's memory).
    static func forward(input: Tensor, weight: Tensor, bias: Tensor?, problem p: Convolution.Problem, output outputBase: Address) {
        var q = phaseProblem(p)
        q.batch = 1
        let weights = phaseWeights(weight, p)
        let input = input.contiguous(), phases = Tensor(uninitializedShape: [1, q.channels, q.height, q.width])
        for image in 0..<p.batch {
            writePhases(of: Address(input), image: image, p, q, into: Address(phases))
            Convolution.forwardCore(input: phases, weight: weights, bias: bias, problem: q,
                                    output: Address(pointer: outputBase.pointer + image * p.outputPlane))
        }
        withExtendedLifetime(input) {}
    }

    /// The input gradient into `p.batch · p.inputPlane` contiguous values at `gradientInput`, image by image.
    static func backwardInput(gradientOutput: Tensor, weight: Tensor, problem p: Convolution.Problem, into gradientInput: UnsafeMutablePointer<Float>) {
        let q = phaseProblem(p), s = p.geometry.strideWidth
        let weights = phaseWeights(weight, p)
        let phaseGradient = Tensor(uninitializedShape: [1, q.channels, q.height, q.width])
        let source = Address(phaseGradient)
        for image in 0..<p.batch {
            Convolution.backwardInput(gradientOutput: gradientOutput.narrowed(axis: 0, start: image, length: 1), weight: weights,
                                      inputShape: phaseGradient.shape, geometry: q.geometry, into: source.pointer)
            let destination = Address(pointer: gradientInput + image * p.inputPlane)
            Parallel.forEach(count: p.channels) { channel in
                for h in 0..<p.height {
                    let to = destination.pointer + (channel * p.height + h) * p.width
                    // Columns past the last phase column are read by no output.
                    to.update(repeating: 0, count: p.width)
                    for r in 0..<s {
                        let from = source.pointer + ((r * p.channels + channel) * q.height + h) * q.width
                        for m in 0..<q.width { to[s * m + r] = from[m] }
                    }
                }
            }
        }
        withExtendedLifetime(phaseGradient) {}
    }

    /// Adds the weight gradient (and the bias gradient when given) of the strided convolution, image by image.
    static func backwardWeight(gradientOutput: Tensor, input: Tensor, problem p: Convolution.Problem,
                               weightGradient: inout Tensor, biasGradient: inout Tensor, withBias: Bool) {
        var q = phaseProblem(p)
        q.batch = 1
        let g = p.geometry, s = g.strideWidth, taps = g.kernelWidth / s
        var phaseGradient = Tensor.zeros([p.outputChannels, q.channels, g.kernelHeight, taps])
        let input = input.contiguous(), phases = Tensor(uninitializedShape: [1, q.channels, q.height, q.width])
        for image in 0..<p.batch {
            writePhases(of: Address(input), image: image, p, q, into: Address(phases))
            Convolution.backwardWeightCore(gradientOutput: gradientOutput.narrowed(axis: 0, start: image, length: 1), input: phases,
                                           geometry: q.geometry, weightGradient: &phaseGradient, biasGradient: &biasGradient, withBias: withBias)
        }
        withExtendedLifetime(input) {}
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
