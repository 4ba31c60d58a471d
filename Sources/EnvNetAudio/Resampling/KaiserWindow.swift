import EnvNetTensor
import Foundation

/// Kaiser window helpers used to design the resampler's low-pass filter.
///
/// The Kaiser window is used because its single parameter trades main-lobe width against
/// side-lobe level in a way that Kaiser's empirical formulas predict, so a filter can be sized
/// directly from a required stop-band attenuation and transition width.
public enum KaiserWindow {
    /// The zeroth-order modified Bessel function of the first kind, `I0(x)`, by its power series.
    ///
    /// The series converges for all `x`; terms are summed until they stop changing the result.
    ///
    /// - Parameter x: The argument.
    /// - Returns: `I0(x)`.
    public static func besselI0(_ x: Double) -> Double {
        var sum = 1.0
        var term = 1.0
        let quarterSquare = x * x / 4
        var k = 1.0
        while true {
            term *= quarterSquare / (k * k)
            let next = sum + term
            if next == sum { return sum }
            sum = next
            k += 1
        }
    }

    /// Kaiser's formula for the shape parameter that reaches a stop-band attenuation.
    ///
    /// - Parameter attenuation: Stop-band attenuation in dB (positive).
    /// - Returns: The window's `beta`.
    public static func beta(forAttenuation attenuation: Double) -> Double {
        if attenuation > 50 { return 0.1102 * (attenuation - 8.7) }
        if attenuation >= 21 {
            return 0.5842 * pow(attenuation - 21, 0.4) + 0.07886 * (attenuation - 21)
        }
        return 0
    }

    /// Kaiser's estimate of the filter order (length minus one) for a given specification.
    ///
    /// - Parameters:
    ///   - attenuation: Stop-band attenuation in dB.
    ///   - transitionWidth: Transition width as a fraction of the sampling rate (0...0.5).
    /// - Returns: The estimated order.
    public static func order(attenuation: Double, transitionWidth: Double) -> Double {
        (attenuation - 7.95) / (2.285 * 2 * Double.pi * transitionWidth)
    }
}
