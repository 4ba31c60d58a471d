import Foundation

/// Element-wise arithmetic with NumPy broadcasting, scalar forms, in-place forms and unary functions.
extension Tensor {
    public static func + (lhs: Tensor, rhs: Tensor) -> Tensor { StridedLoop.zip(lhs, rhs, operation: "+") { $0 + $1 } }
    public static func - (lhs: Tensor, rhs: Tensor) -> Tensor { StridedLoop.zip(lhs, rhs, operation: "-") { $0 - $1 } }
    public static func * (lhs: Tensor, rhs: Tensor) -> Tensor { StridedLoop.zip(lhs, rhs, operation: "*") { $0 * $1 } }
    public static func / (lhs: Tensor, rhs: Tensor) -> Tensor { StridedLoop.zip(lhs, rhs, operation: "/") { $0 / $1 } }

    public static func + (lhs: Tensor, rhs: Float) -> Tensor { StridedLoop.map(lhs) { $0 + rhs } }
    public static func - (lhs: Tensor, rhs: Float) -> Tensor { StridedLoop.map(lhs) { $0 - rhs } }
    public static func * (lhs: Tensor, rhs: Float) -> Tensor { StridedLoop.map(lhs) { $0 * rhs } }
    public static func / (lhs: Tensor, rhs: Float) -> Tensor { StridedLoop.map(lhs) { $0 / rhs } }
    public static func + (lhs: Float, rhs: Tensor) -> Tensor { StridedLoop.map(rhs) { lhs + $0 } }
    public static func - (lhs: Float, rhs: Tensor) -> Tensor { StridedLoop.map(rhs) { lhs - $0 } }
    public static func * (lhs: Float, rhs: Tensor) -> Tensor { StridedLoop.map(rhs) { lhs * $0 } }
    public static func / (lhs: Float, rhs: Tensor) -> Tensor { StridedLoop.map(rhs) { lhs / $0 } }
    public static prefix func - (operand: Tensor) -> Tensor { StridedLoop.map(operand) { -$0 } }

    /// In place; `rhs` broadcasts to `lhs`'s shape, which does not change.
    public static func += (lhs: inout Tensor, rhs: Tensor) { StridedLoop.update(&lhs, with: rhs, operation: "+=") { $0 + $1 } }
    public static func -= (lhs: inout Tensor, rhs: Tensor) { StridedLoop.update(&lhs, with: rhs, operation: "-=") { $0 - $1 } }
    public static func *= (lhs: inout Tensor, rhs: Tensor) { StridedLoop.update(&lhs, with: rhs, operation: "*=") { $0 * $1 } }
    public static func /= (lhs: inout Tensor, rhs: Tensor) { StridedLoop.update(&lhs, with: rhs, operation: "/=") { $0 / $1 } }
    public static func += (lhs: inout Tensor, rhs: Float) { StridedLoop.apply(&lhs) { $0 + rhs } }
    public static func -= (lhs: inout Tensor, rhs: Float) { StridedLoop.apply(&lhs) { $0 - rhs } }
    public static func *= (lhs: inout Tensor, rhs: Float) { StridedLoop.apply(&lhs) { $0 * rhs } }
    public static func /= (lhs: inout Tensor, rhs: Float) { StridedLoop.apply(&lhs) { $0 / rhs } }

    /// Writes `source` (broadcast to this tensor's shape) into this tensor's elements.
    public mutating func assign(_ source: Tensor) {
        StridedLoop.update(&self, with: source, operation: "assign") { _, new in new }
    }

    /// Sets every element to `value`.
    public mutating func fill(with value: Float) {
        StridedLoop.apply(&self) { _ in value }
    }

    /// `transform` applied to every element.
    public func map(_ transform: (Float) -> Float) -> Tensor { StridedLoop.map(self, transform) }

    /// `combine` applied to corresponding elements of `self` and `other` (broadcast).
    public func zipWith(_ other: Tensor, _ combine: (Float, Float) -> Float) -> Tensor {
        StridedLoop.zip(self, other, operation: "zipWith", combine)
    }

    /// max(x, 0) element-wise.
    public func relu() -> Tensor { StridedLoop.map(self) { $0 > 0 ? $0 : 0 } }
    /// e^x element-wise.
    public func exp() -> Tensor { StridedLoop.map(self) { Foundation.exp($0) } }
    /// Natural logarithm element-wise.
    public func log() -> Tensor { StridedLoop.map(self) { Foundation.log($0) } }
    /// Square root element-wise.
    public func sqrt() -> Tensor { StridedLoop.map(self) { $0.squareRoot() } }
    /// |x| element-wise.
    public func abs() -> Tensor { StridedLoop.map(self) { Swift.abs($0) } }
    /// x² element-wise.
    public func squared() -> Tensor { StridedLoop.map(self) { $0 * $0 } }
    /// Each element limited to `lower...upper`.
    public func clamped(to range: ClosedRange<Float>) -> Tensor {
        let lower = range.lowerBound, upper = range.upperBound
        return StridedLoop.map(self) { Swift.min(Swift.max($0, lower), upper) }
    }
    /// The larger of corresponding elements (broadcast).
    public func maximum(_ other: Tensor) -> Tensor { StridedLoop.zip(self, other, operation: "maximum") { Swift.max($0, $1) } }
    /// The smaller of corresponding elements (broadcast).
    public func minimum(_ other: Tensor) -> Tensor { StridedLoop.zip(self, other, operation: "minimum") { Swift.min($0, $1) } }

    /// True when both have the same shape and every pair of elements differs by at most
    /// `absoluteTolerance + relativeTolerance * |other|` (NumPy's `allclose`).
    public func isApproximatelyEqual(to other: Tensor, relativeTolerance: Float = 1e-5, absoluteTolerance: Float = 1e-6) -> Bool {
        guard shape == other.shape else { return false }
        for (a, b) in Swift.zip(scalars, other.scalars) {
            if a.isNaN || b.isNaN { return false }
            if Swift.abs(a - b) > absoluteTolerance + relativeTolerance * Swift.abs(b) { return false }
        }
        return true
    }
}
