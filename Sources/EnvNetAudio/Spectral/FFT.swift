import EnvNetTensor
import Foundation

/// A radix-2 FFT of real input, in double precision.
///
/// Why our own: the package may depend on nothing but swift-log, Accelerate's vDSP does not
/// exist on Linux, FFTW's GPL cannot be embedded under Apache-2.0, and the transforms this
/// library needs are small and of power-of-two sizes: 2048 or 4096 points per frame for the
/// between-class gain, 1024 for the log-mel features. An iterative radix-2
/// transform handles every power-of-two size, is short enough to verify by reading, and is
/// tested against a direct DFT. The real input of length `N` is packed into a complex FFT of
/// length `N/2` and unpacked with one extra twiddle pass, which halves the work. Double
/// precision keeps the dB gains equal to the numpy reference to well below 0.001 dB.
public struct RealFFT: Sendable {
    /// The transform length (a power of two, at least 2).
    public let size: Int
    private let half: Int
    private let bitReversed: [Int]
    /// `exp(-2 pi i k / half)` for `k < half / 2`, for the complex stages.
    private let stageCosines: [Double]
    private let stageSines: [Double]
    /// `exp(-2 pi i k / size)` for `k <= half`, for unpacking the real spectrum.
    private let unpackCosines: [Double]
    private let unpackSines: [Double]

    /// Creates a transform of a given length.
    ///
    /// - Parameter size: A power of two, at least 2.
    /// - Throws: `AudioError.Problem.invalidArgument` otherwise.
    public init(size: Int) throws {
        guard size >= 2, size & (size - 1) == 0 else {
            throw AudioError(source: "RealFFT(size: \(size))",
                             problem: .invalidArgument("size must be a power of two >= 2"))
        }
        self.size = size
        half = size / 2
        var bits = 0
        while (1 << bits) < half { bits += 1 }
        bitReversed = (0..<half).map { index in
            var reversed = 0
            for bit in 0..<bits where index & (1 << bit) != 0 { reversed |= 1 << (bits - 1 - bit) }
            return reversed
        }
        let halfCount = half
        stageCosines = (0..<max(1, halfCount / 2)).map { cos(-2 * Double.pi * Double($0) / Double(halfCount)) }
        stageSines = (0..<max(1, halfCount / 2)).map { sin(-2 * Double.pi * Double($0) / Double(halfCount)) }
        unpackCosines = (0...halfCount).map { cos(-2 * Double.pi * Double($0) / Double(size)) }
        unpackSines = (0...halfCount).map { sin(-2 * Double.pi * Double($0) / Double(size)) }
    }

    /// The non-negative-frequency half of the DFT, `X[k] = sum x[n] exp(-2 pi i k n / N)`.
    ///
    /// - Parameter input: Exactly `size` samples.
    /// - Returns: Real and imaginary parts of `X[0...N/2]` (`N/2 + 1` bins each).
    public func transform(_ input: [Double]) -> (real: [Double], imaginary: [Double]) {
        precondition(input.count == size, "input length must equal the FFT size")
        var outRe = [Double](repeating: 0, count: half + 1)
        var outIm = [Double](repeating: 0, count: half + 1)
        var workspace = [Double](repeating: 0, count: 2 * half)
        input.withUnsafeBufferPointer { x in
            outRe.withUnsafeMutableBufferPointer { re in
                outIm.withUnsafeMutableBufferPointer { im in
                    workspace.withUnsafeMutableBufferPointer { work in
                        transform(x.baseAddress!, real: re.baseAddress!, imaginary: im.baseAddress!, workspace: work.baseAddress!)
                    }
                }
            }
        }
        return (outRe, outIm)
    }

    /// The non-negative-frequency half of the DFT into caller-owned memory, with no allocation.
    ///
    /// - Parameters:
    ///   - input: `size` samples.
    ///   - real: Room for `size / 2 + 1` real parts.
    ///   - imaginary: Room for `size / 2 + 1` imaginary parts.
    ///   - workspace: Room for `size` doubles, overwritten.
    public func transform(_ input: UnsafePointer<Double>, real: UnsafeMutablePointer<Double>,
                          imaginary: UnsafeMutablePointer<Double>, workspace: UnsafeMutablePointer<Double>) {
        run(input, real: real, imaginary: imaginary, workspace: workspace)
    }

    /// Four transforms at once, one per SIMD lane: `input[n]` holds sample `n` of four frames, and
    /// `real[k]`, `imaginary[k]` receive bin `k` of each. The same arithmetic as
    /// ``transform(_:real:imaginary:workspace:)`` lane by lane (so the same results to the last
    /// bit); the lanes fill the vector units that one frame's scalar butterflies leave idle (the
    /// log-mel front end runs four frames at a time).
    ///
    /// - Parameters:
    ///   - input: `size` vectors.
    ///   - real: Room for `size / 2 + 1` vectors.
    ///   - imaginary: Room for `size / 2 + 1` vectors.
    ///   - workspace: Room for `size` vectors, overwritten.
    public func transform4(_ input: UnsafePointer<SIMD4<Double>>, real: UnsafeMutablePointer<SIMD4<Double>>,
                           imaginary: UnsafeMutablePointer<SIMD4<Double>>, workspace: UnsafeMutablePointer<SIMD4<Double>>) {
        run(input, real: real, imaginary: imaginary, workspace: workspace)
    }

    /// The transform for one value or a vector of values per position (specialised for each).
    private func run<Lane: FourierLane>(_ input: UnsafePointer<Lane>, real outRe: UnsafeMutablePointer<Lane>,
                                        imaginary outIm: UnsafeMutablePointer<Lane>, workspace: UnsafeMutablePointer<Lane>) {
        let half = self.half
        let re = workspace, im = workspace + half
        bitReversed.withUnsafeBufferPointer { order in
            // Pack even samples as real parts and odd samples as imaginary parts.
            for index in 0..<half {
                let target = order[index]
                re[target] = input[2 * index]
                im[target] = input[2 * index + 1]
            }
        }
        stageCosines.withUnsafeBufferPointer { cosines in
            stageSines.withUnsafeBufferPointer { sines in
                var length = 2
                while length <= half {
                    let step = half / length
                    let halfLength = length / 2
                    var start = 0
                    while start < half {
                        for k in 0..<halfLength {
                            let wr = cosines[k * step], wi = sines[k * step]
                            let a = start + k, b = a + halfLength
                            let tr = re[b] * wr - im[b] * wi
                            let ti = re[b] * wi + im[b] * wr
                            re[b] = re[a] - tr
                            im[b] = im[a] - ti
                            re[a] = re[a] + tr
                            im[a] = im[a] + ti
                        }
                        start += length
                    }
                    length *= 2
                }
            }
        }
        // Unpack: with Z = FFT(z), z[n] = x[2n] + i x[2n+1],
        // X[k] = (Z[k] + conj Z[N/2-k]) / 2 - i W^k (Z[k] - conj Z[N/2-k]) / 2.
        unpackCosines.withUnsafeBufferPointer { cosines in
            unpackSines.withUnsafeBufferPointer { sines in
                for k in 0...half {
                    let zr = re[k == half ? 0 : k], zi = im[k == half ? 0 : k]
                    let mirror = k == 0 ? 0 : half - k
                    let cr = re[mirror], ci = -im[mirror]
                    // Halving by multiplying with 0.5 is exact, as division by 2 is.
                    let evenRe = (zr + cr) * 0.5, evenIm = (zi + ci) * 0.5
                    let oddRe = (zi - ci) * 0.5, oddIm = -(zr - cr) * 0.5
                    let wr = cosines[k], wi = sines[k]
                    outRe[k] = evenRe + oddRe * wr - oddIm * wi
                    outIm[k] = evenIm + oddRe * wi + oddIm * wr
                }
            }
        }
    }

    /// `|X[k]|^2` for `k = 0...N/2`.
    ///
    /// - Parameter input: Exactly `size` samples.
    /// - Returns: `N/2 + 1` power values.
    public func powerSpectrum(_ input: [Double]) -> [Double] {
        let spectrum = transform(input)
        return zip(spectrum.real, spectrum.imaginary).map { $0 * $0 + $1 * $1 }
    }
}

/// What the FFT's butterflies need of a value: one double, or four in SIMD lanes.
protocol FourierLane {
    static func + (lhs: Self, rhs: Self) -> Self
    static func - (lhs: Self, rhs: Self) -> Self
    static func * (lhs: Self, rhs: Double) -> Self
    static prefix func - (operand: Self) -> Self
}

extension Double: FourierLane {}
extension SIMD4: FourierLane where Scalar == Double {}
