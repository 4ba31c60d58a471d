/// What went wrong in a tensor operation, with the operation's name and the shapes or axes involved.
///
/// The policy for misuse, applied by every operation of the tensor core:
/// - Each operation checks its shapes and axes with a throwing check that produces one of these
///   errors, naming the operation and the shapes or the axis (`"matmul: inner dimensions differ:
///   [2, 3] x [4, 5]"`).
/// - Non-throwing operations (arithmetic, views, kernels) treat a failed check as a programming
///   error, like an array index out of range: they stop with the error's message.
/// - Code that handles outside input (files, user buffers) calls the throwing forms
///   (``Tensor/init(validating:shape:)``, ``Shape/broadcast(_:_:operation:)``, …) or checks shapes before
///   calling, and reports a ``TensorError`` instead.
public enum TensorError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Shapes that do not fit together (broadcasting, matmul, element counts).
    case shapeMismatch(operation: String, message: String)
    /// An axis outside `-rank..<rank`, or repeated.
    case invalidAxis(operation: String, message: String)
    /// An element index outside the shape.
    case invalidIndex(operation: String, message: String)
    /// Any other argument out of its domain (negative extent, zero step, bad kernel size …).
    case invalidArgument(operation: String, message: String)
    /// LAPACK reported a failure.
    case linearAlgebra(operation: String, message: String)

    public var description: String {
        switch self {
        case let .shapeMismatch(operation, message),
             let .invalidAxis(operation, message),
             let .invalidIndex(operation, message),
             let .invalidArgument(operation, message),
             let .linearAlgebra(operation, message):
            return "\(operation): \(message)"
        }
    }

    /// Runs a throwing check; a failure is a programming error and stops with the error's message.
    /// The upper targets use it too, so misuse reads the same at every level.
    @inline(__always)
    @discardableResult
    public static func check<T>(_ body: () throws -> T) -> T {
        do {
            return try body()
        } catch {
            fatalError("\(error)")
        }
    }
}

/// Shape arithmetic shared by every operation: validation, strides, broadcasting, axes.
public enum Shape {
    /// Row-major strides of a contiguous tensor of `shape`.
    public static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var running = 1
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[axis] = running
            running *= max(shape[axis], 1)
        }
        return strides
    }

    /// Checks that every extent is non-negative.
    public static func validate(_ shape: [Int], operation: String) throws {
        if let bad = shape.firstIndex(where: { $0 < 0 }) {
            throw TensorError.invalidArgument(operation: operation, message: "negative extent \(shape[bad]) on axis \(bad) of shape \(shape)")
        }
    }

    /// True when `strides` describe row-major order without gaps for `shape` (extent-1 axes are ignored).
    public static func isContiguous(shape: [Int], strides: [Int]) -> Bool {
        var expected = 1
        for axis in stride(from: shape.count - 1, through: 0, by: -1) where shape[axis] != 1 {
            if shape[axis] == 0 { return true }
            if strides[axis] != expected { return false }
            expected *= shape[axis]
        }
        return true
    }

    /// The lowest and highest storage offsets (relative to the tensor's offset) a layout touches.
    static func span(shape: [Int], strides: [Int]) -> (lowest: Int, highest: Int, count: Int) {
        let count = shape.reduce(1, *)
        var lowest = 0, highest = 0
        for (extent, stride) in zip(shape, strides) where extent > 0 {
            if stride > 0 { highest += (extent - 1) * stride } else { lowest += (extent - 1) * stride }
        }
        return (lowest, highest, count)
    }

    /// Resolves a possibly negative axis (`-1` is the last) against `rank`.
    public static func normalize(axis: Int, rank: Int, operation: String) throws -> Int {
        let resolved = axis < 0 ? axis + rank : axis
        guard resolved >= 0, resolved < rank else {
            throw TensorError.invalidAxis(operation: operation, message: "axis \(axis) is out of range for rank \(rank)")
        }
        return resolved
    }

    /// Resolves a set of axes, rejecting repeats.
    public static func normalize(axes: [Int], rank: Int, operation: String) throws -> [Int] {
        let resolved = try axes.map { try normalize(axis: $0, rank: rank, operation: operation) }
        guard Set(resolved).count == resolved.count else {
            throw TensorError.invalidAxis(operation: operation, message: "axes \(axes) repeat an axis")
        }
        return resolved
    }

    /// The NumPy broadcast of two shapes: aligned at the right, extent 1 stretches to match.
    public static func broadcast(_ lhs: [Int], _ rhs: [Int], operation: String = "broadcast") throws -> [Int] {
        let rank = max(lhs.count, rhs.count)
        var result = [Int](repeating: 1, count: rank)
        for index in 0..<rank {
            let left = index < rank - lhs.count ? 1 : lhs[index - (rank - lhs.count)]
            let right = index < rank - rhs.count ? 1 : rhs[index - (rank - rhs.count)]
            if left == right || right == 1 {
                result[index] = left
            } else if left == 1 {
                result[index] = right
            } else {
                throw TensorError.shapeMismatch(operation: operation, message: "shapes \(lhs) and \(rhs) do not broadcast")
            }
        }
        return result
    }
}
