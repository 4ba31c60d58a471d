import Foundation
import Testing

@testable import EnvNetTensor
import CEnvNetSupport

/// bf16 operands with fp32 accumulation: the rounding, the AVX512-BF16 kernel against the
/// definition (naive loops in Double over the rounded operands), and the portable path.
@Suite("bf16 matrix products")
struct BFloat16MatmulTests {
    @Test("Rounding to bf16 is to nearest, ties to even; NaN stays NaN, overflow goes to infinity")
    func rounding() {
        #expect(BFloat16Matmul.rounded(1) == 1)
        #expect(BFloat16Matmul.rounded(1 + 1.0 / 256) == 1)  // a tie: to the even mantissa
        #expect(BFloat16Matmul.rounded(1 + 3.0 / 256) == 1 + 4.0 / 256)  // a tie the other way
        #expect(BFloat16Matmul.rounded(1 + 3.0 / 512) == 1 + 1.0 / 128)  // above the tie: up
        #expect(BFloat16Matmul.rounded(-0.1) == -0.10009765625)
        #expect(BFloat16Matmul.rounded(.nan).isNaN)
        #expect(BFloat16Matmul.rounded(.infinity) == .infinity)
        #expect(BFloat16Matmul.rounded(.greatestFiniteMagnitude) == .infinity)
    }

    /// The product of the bf16-rounded operands, in Double.
    static func reference(_ a: Tensor, _ b: Tensor) -> [Double] {
        let (m, k, n) = (a.shape[0], a.shape[1], b.shape[1])
        let x = BFloat16Matmul.rounded(a).scalars, y = BFloat16Matmul.rounded(b).scalars
        var result = [Double](repeating: 0, count: m * n)
        for r in 0..<m {
            for j in 0..<k {
                let left = Double(x[r * k + j])
                for c in 0..<n { result[r * n + c] += left * Double(y[j * n + c]) }
            }
        }
        return result
    }

    static func largestRelativeDifference(_ value: Tensor, _ reference: [Double]) -> Double {
        let scale = reference.map(abs).max() ?? 0
        let difference = zip(value.scalars, reference).map { abs(Double($0) - $1) }.max() ?? 0
        return difference / Swift.max(scale, 1e-30)
    }

    static let shapes: [(Int, Int, Int)] = [(1, 1, 1), (5, 7, 3), (8, 64, 32), (13, 33, 50), (9, 300, 65), (64, 240, 100)]

    @Test("The AVX512-BF16 kernel equals the definition within fp32 summation error (odd K, ragged rows and panels)")
    func kernelMatchesDefinition() throws {
        // A machine that has the instructions must run them: this test may not pass by falling back.
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        if cpuinfo.contains("avx512_bf16") && cpuinfo.contains("avx512f") {
            #expect(BFloat16Matmul.hasAVX512BF16)
        }
        var generator = SeededGenerator(seed: 19)
        for (m, k, n) in Self.shapes {
            let a = Tensor.uniform([m, k], in: -1..<1, generator: &generator)
            let b = Tensor.uniform([k, n], in: -1..<1, generator: &generator)
            let reference = Self.reference(a, b)
            for path in BFloat16Matmul.Path.allCases {
                let product = BFloat16Matmul.multiply(a, b, path: path)
                #expect(product.shape == [m, n])
                let difference = Self.largestRelativeDifference(product, reference)
                #expect(difference < 1e-5, "\(path) \(m)x\(k)x\(n): \(difference)")
            }
        }
    }

    @Test("A weight packed once, as B or transposed (a linear layer's [out, in]), gives the same products")
    func packedOperands() {
        guard BFloat16Matmul.hasAVX512BF16 else {
            #expect(PackedBFloat16Matrix(Tensor.zeros([2, 2])) == nil)
            return
        }
        var generator = SeededGenerator(seed: 21)
        for (m, k, n) in [(3, 7, 5), (16, 65, 33), (64, 240, 70)] {
            let x = Tensor.uniform([m, k], in: -1..<1, generator: &generator)
            let w = Tensor.uniform([n, k], in: -1..<1, generator: &generator)
            let wt = w.transposed.contiguous()
            let reference = Self.reference(x, wt)
            guard let fromTransposed = PackedBFloat16Matrix(transposing: w), let direct = PackedBFloat16Matrix(wt) else {
                Issue.record("packing failed on a CPU with AVX512-BF16")
                return
            }
            #expect(fromTransposed.rows == k && fromTransposed.columns == n)
            let first = BFloat16Matmul.multiply(x, fromTransposed), second = BFloat16Matmul.multiply(x, direct)
            #expect(first.scalars == second.scalars)
            #expect(Self.largestRelativeDifference(first, reference) < 1e-5)
            // Packed once, used again.
            #expect(BFloat16Matmul.multiply(x, fromTransposed).scalars == first.scalars)
        }
    }

    @Test("bf16 operands differ from fp32 ones by about bf16's precision, within the 2e-2 the logits may differ")
    func differsFromFloat32AsBF16Should() {
        var generator = SeededGenerator(seed: 20)
        let a = Tensor.uniform([16, 512], in: -1..<1, generator: &generator)
        let b = Tensor.uniform([512, 40], in: -1..<1, generator: &generator)
        let exact = a.matmul(b).scalars.map(Double.init)
        let difference = Self.largestRelativeDifference(BFloat16Matmul.multiply(a, b), exact)
        #expect(difference > 1e-4 && difference < 2e-2, "\(difference)")
    }

    @Test("gemm(precision: .bfloat16) equals the definition for every transpose, with and without accumulation, in one piece and in parallel blocks",
          arguments: [(37, 71, 45), (300, 530, 19)])  // ragged rows, panels and odd K; then several of the kernel's 128 x 256 blocks
    func stridedProducts(m: Int, n: Int, k: Int) throws {
        var generator = SeededGenerator(seed: UInt64(31 + m))
        for (transposeA, transposeB) in [(false, false), (false, true), (true, false), (true, true)] {
            let a = Tensor.uniform([m, k], in: -1..<1, generator: &generator), b = Tensor.uniform([k, n], in: -1..<1, generator: &generator)
            let c0 = Tensor.uniform([m, n], in: -1..<1, generator: &generator)
            // The operands as the call reads them: stored transposed where the flag says so.
            let storedA = transposeA ? a.permuted([1, 0]).contiguousCopy() : a, storedB = transposeB ? b.permuted([1, 0]).contiguousCopy() : b
            let product = Self.reference(a, b)
            for accumulate in [false, true] {
                for parallel in [false, true] {
                    var c = c0.contiguousCopy()
                    storedA.withUnsafeBufferPointer { x in
                        storedB.withUnsafeBufferPointer { y in
                            c.withUnsafeMutableBufferPointer { z in
                                let call = parallel ? parallelGemm : gemm
                                call(.bfloat16, transposeA, transposeB, m, n, k, x.baseAddress!, transposeA ? m : k,
                                     y.baseAddress!, transposeB ? k : n, accumulate ? 1 : 0, z.baseAddress!, n)
                            }
                        }
                    }
                    let expected = accumulate ? zip(product, c0.scalars).map { $0 + Double($1) } : product
                    let difference = Self.largestRelativeDifference(c, expected)
                    let what = "transposeA \(transposeA), transposeB \(transposeB), accumulate \(accumulate), parallel \(parallel)"
                    if BFloat16Matmul.hasAVX512BF16 {
                        #expect(difference < 1e-5, "\(what): \(difference)")
                    } else {
                        // fp32 elsewhere: within bf16's error of the rounded product.
                        #expect(difference < 2e-2, "\(what): \(difference)")
                    }
                }
            }
            if BFloat16Matmul.hasAVX512BF16 {
                // Negative control: the unrounded product is measurably different.
                let exact = a.matmul(b)
                #expect(Self.largestRelativeDifference(exact, product) > 1e-4)
            }
        }
    }

    @Test("The 1x8 weight gradient packed straight from the input equals the definition over the rounded operands (odd and long rows, padding, accumulation)",
          arguments: [(4, 3, 37, 0, 1, 29), (40, 40, 300, 3, 17, 250), (8, 9, 5000, 4, 0, 5000), (12, 16, 1030, 0, 1, 1021)])
    func convolutionWeightGradient(channels: Int, outputChannels: Int, width: Int, padding: Int, first: Int, count: Int) {
        var generator = SeededGenerator(seed: UInt64(channels * 7 + width))
        let outputWidth = width + 2 * padding - 7
        let x = (0..<(channels * width)).map { _ in Float.random(in: -2..<2, using: &generator) }
        let dy = (0..<(outputChannels * outputWidth)).map { _ in Float.random(in: -1..<1, using: &generator) }
        // The partial is accumulated into: start from values already there.
        let initial = (0..<(outputChannels * channels * 8)).map { _ in Float.random(in: -1..<1, using: &generator) }
        var partial = initial
        let status = envnet_bf16_conv1x8_weight_gradient(x, width, Int32(channels), dy, outputWidth, Int32(outputChannels), padding,
                                                         first, count, &partial)
        guard BFloat16Matmul.hasAVX512BF16 else {
            #expect(status == 0 && partial == initial, "without AVX512-BF16 the kernel must decline and write nothing")
            return
        }
        #expect(status == 1)
        let r = BFloat16Matmul.rounded as (Float) -> Float
        var worst = 0.0, scale = 0.0
        for o in 0..<outputChannels {
            for c in 0..<channels {
                for j in 0..<8 {
                    var sum = Double(initial[(o * channels + c) * 8 + j])
                    for t in first..<(first + count) {
                        let at = t + j - padding
                        guard at >= 0 && at < width else { continue }
                        sum += Double(r(dy[o * outputWidth + t])) * Double(r(x[c * width + at]))
                    }
                    worst = max(worst, abs(sum - Double(partial[(o * channels + c) * 8 + j])))
                    scale = max(scale, abs(sum))
                }
            }
        }
        #expect(worst <= 1e-5 * scale, "largest difference \(worst) at scale \(scale)")
        // Sizes it does not take are declined without a write.
        var untouched = initial
        #expect(envnet_bf16_conv1x8_weight_gradient(x, width, Int32(channels), dy, outputWidth + 1, Int32(outputChannels), padding,
                                                    first, count, &untouched) == 0 && untouched == initial)
    }
}
