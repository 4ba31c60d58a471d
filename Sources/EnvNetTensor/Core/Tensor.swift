#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Shared, 64-byte aligned Float32 memory behind one or more tensors.
///
/// Several `Tensor` values (a tensor and its views) may share one storage; `Tensor` copies it
/// before a write whenever it is not the only owner, which is what gives tensors value semantics.
public final class TensorStorage: @unchecked Sendable {
    /// Number of `Float` elements allocated.
    public let capacity: Int
    /// The first element. Valid for the lifetime of the storage.
    public let baseAddress: UnsafeMutablePointer<Float>

    /// The byte count of a zeroed storage mapped from the kernel; nil for heap storage.
    private let mappedBytes: Int?

    /// Zeroed storage from this size on is mapped fresh from the kernel: its pages cost no
    /// memory until written (a gradient or a placeholder weight that is never used stays free).
    static let zeroMappingThreshold = 1 << 20

    /// Allocates uninitialised storage for `capacity` elements.
    public init(capacity: Int) {
        self.capacity = capacity
        // Alignment to a cache line lets BLAS and vector loops start on a full line.
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: max(capacity, 1) * MemoryLayout<Float>.stride, alignment: 64)
        baseAddress = raw.bindMemory(to: Float.self, capacity: max(capacity, 1))
        mappedBytes = nil
    }

    /// Allocates storage for `capacity` elements, all zero.
    public init(zeroedCapacity capacity: Int) {
        self.capacity = capacity
        let bytes = max(capacity, 1) * MemoryLayout<Float>.stride
        if bytes >= Self.zeroMappingThreshold,
           let mapped = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), mapped != MAP_FAILED {
            // Anonymous mappings are page-aligned (so 64-byte aligned) and read as zeros.
            baseAddress = mapped.bindMemory(to: Float.self, capacity: max(capacity, 1))
            mappedBytes = bytes
        } else {
            let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            baseAddress = raw.bindMemory(to: Float.self, capacity: max(capacity, 1))
            baseAddress.initialize(repeating: 0, count: max(capacity, 1))
            mappedBytes = nil
        }
    }

    deinit {
        if let mappedBytes {
            munmap(UnsafeMutableRawPointer(baseAddress), mappedBytes)
        } else {
            UnsafeMutableRawPointer(baseAddress).deallocate()
        }
    }
}

/// An n-dimensional array of `Float` values: a shape, strides and an offset over shared storage.
///
/// `Tensor` is a value type. Views (``reshaped(_:)``, ``permuted(_:)``, ``narrowed(axis:start:length:)``,
/// ``expanded(to:)`` …) share storage with the tensor they come from and cost no copy; the first
/// write through any of them copies the storage if it is shared (copy-on-write), so a copy never
/// sees another's writes.
///
/// Shapes and axes are checked on every operation. Misuse (a shape mismatch, an axis out of range)
/// is a programming error that stops the program with a message naming the shapes or the axis; the
/// same checks are available as throwing functions (see ``TensorError``) for code that validates
/// outside input before it reaches the tensor core. See `Docs/architecture.md`.
public struct Tensor: Sendable {
    /// Extent of every axis, outermost first.
    public private(set) var shape: [Int]
    /// Distance in elements between neighbours along every axis (0 for a broadcast axis).
    public private(set) var strides: [Int]
    /// Position of the first element in ``storage``.
    public private(set) var offset: Int
    /// The memory this tensor reads from; shared with its views.
    public private(set) var storage: TensorStorage

    /// Wraps existing storage. The layout is checked against the storage's capacity.
    public init(storage: TensorStorage, shape: [Int], strides: [Int], offset: Int = 0) {
        TensorError.check {
            try Shape.validate(shape, operation: "Tensor(storage:shape:strides:offset:)")
            guard strides.count == shape.count else {
                throw TensorError.invalidArgument(
                    operation: "Tensor(storage:shape:strides:offset:)",
                    message: "\(strides.count) strides for shape \(shape)")
            }
            let span = Shape.span(shape: shape, strides: strides)
            if span.count > 0, offset + span.lowest < 0 || offset + span.highest >= storage.capacity {
                throw TensorError.invalidArgument(
                    operation: "Tensor(storage:shape:strides:offset:)",
                    message: "layout \(shape) strides \(strides) offset \(offset) exceeds storage of \(storage.capacity)")
            }
        }
        self.storage = storage
        self.shape = shape
        self.strides = strides
        self.offset = offset
    }

    /// Uninitialised contiguous tensor: the caller writes every element before reading.
    @usableFromInline
    init(uninitializedShape shape: [Int]) {
        let count = shape.reduce(1, *)
        storage = TensorStorage(capacity: count)
        self.shape = shape
        strides = Shape.contiguousStrides(shape)
        offset = 0
    }

    // MARK: - Creation

    /// A tensor of the given shape filled with `value`.
    public init(repeating value: Float, shape: [Int]) {
        TensorError.check { try Shape.validate(shape, operation: "Tensor(repeating:shape:)") }
        self.init(uninitializedShape: shape)
        storage.baseAddress.initialize(repeating: value, count: Swift.max(shape.reduce(1, *), 0))
    }

    /// A tensor holding `values` in row-major order with the given shape.
    ///
    /// The number of values must equal the product of the shape; see ``init(validating:shape:)``
    /// for a throwing form.
    public init(_ values: [Float], shape: [Int]) {
        self = TensorError.check { try Tensor(validating: values, shape: shape) }
    }

    /// A tensor holding `values` in row-major order, throwing if their number does not match `shape`.
    public init(validating values: [Float], shape: [Int]) throws {
        try Shape.validate(shape, operation: "Tensor(_:shape:)")
        let count = shape.reduce(1, *)
        guard values.count == count else {
            throw TensorError.shapeMismatch(
                operation: "Tensor(_:shape:)",
                message: "\(values.count) values do not fill shape \(shape) (\(count) elements)")
        }
        self.init(uninitializedShape: shape)
        values.withUnsafeBufferPointer { source in
            if count > 0 { storage.baseAddress.initialize(from: source.baseAddress!, count: count) }
        }
    }

    /// A rank-1 tensor holding `values`.
    public init(_ values: [Float]) {
        self.init(values, shape: [values.count])
    }

    /// A rank-0 tensor (a scalar).
    public init(scalar: Float) {
        self.init([scalar], shape: [])
    }

    /// A tensor of zeros.
    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(repeating: 0, shape: shape) }

    /// A tensor of zeros whose memory, when large, is fresh pages from the kernel that cost
    /// nothing until written: for placeholders that will be replaced (the weights of a network
    /// about to be loaded). Not for working buffers: first writes to fresh pages fault, so a
    /// buffer allocated per step would be slower than ``zeros(_:)``.
    public static func zerosMappedOnFirstWrite(_ shape: [Int]) -> Tensor {
        TensorError.check { try Shape.validate(shape, operation: "Tensor.zerosMappedOnFirstWrite") }
        return Tensor(storage: TensorStorage(zeroedCapacity: shape.reduce(1, *)), shape: shape, strides: Shape.contiguousStrides(shape))
    }

    /// A tensor of ones.
    public static func ones(_ shape: [Int]) -> Tensor { Tensor(repeating: 1, shape: shape) }

    /// A tensor filled with `value`.
    public static func filled(_ value: Float, shape: [Int]) -> Tensor { Tensor(repeating: value, shape: shape) }

    /// The values `start, start + step, …` below `end` (above `end` for a negative step), as in NumPy's `arange`.
    public static func range(from start: Float = 0, to end: Float, step: Float = 1) -> Tensor {
        TensorError.check {
            guard step != 0, step.isFinite, start.isFinite, end.isFinite else {
                throw TensorError.invalidArgument(operation: "Tensor.range", message: "step \(step) from \(start) to \(end)")
            }
        }
        let count = Swift.max(0, Int(((end - start) / step).rounded(.up)))
        var values = [Float]()
        values.reserveCapacity(count)
        for index in 0..<count { values.append(start + Float(index) * step) }
        return Tensor(values, shape: [count])
    }

    // MARK: - Properties

    /// Number of axes.
    public var rank: Int { shape.count }

    /// Number of elements (the product of the shape; 1 for a scalar).
    public var count: Int { shape.reduce(1, *) }

    /// True when the elements lie in row-major order without gaps, so ``storage`` can be read linearly.
    public var isContiguous: Bool { Shape.isContiguous(shape: shape, strides: strides) }

    /// The element of a scalar or one-element tensor.
    public var scalar: Float {
        TensorError.check {
            guard count == 1 else {
                throw TensorError.shapeMismatch(operation: "Tensor.scalar", message: "shape \(shape) holds \(count) elements, not 1")
            }
        }
        return storage.baseAddress[offset]
    }

    /// All elements in row-major order.
    public var scalars: [Float] {
        let source = contiguous()
        return Array(UnsafeBufferPointer(start: source.storage.baseAddress + source.offset, count: source.count))
    }

    // MARK: - Element access

    /// The storage position of an element, with every index checked against the shape.
    func position(of indices: [Int]) -> Int {
        TensorError.check {
            guard indices.count == shape.count else {
                throw TensorError.invalidIndex(operation: "Tensor subscript", message: "\(indices.count) indices for shape \(shape)")
            }
            for (axis, index) in indices.enumerated() where index < 0 || index >= shape[axis] {
                throw TensorError.invalidIndex(
                    operation: "Tensor subscript", message: "index \(index) on axis \(axis) of shape \(shape)")
            }
        }
        var position = offset
        for axis in 0..<indices.count { position += indices[axis] * strides[axis] }
        return position
    }

    /// The element at `indices` (one index per axis). Meant for tests and small work; loops over
    /// many elements should use the whole-tensor operations.
    public subscript(indices: Int...) -> Float {
        get { storage.baseAddress[position(of: indices)] }
        set {
            makeUniqueAndWritable()
            storage.baseAddress[position(of: indices)] = newValue
        }
    }

    /// The element at `indices` given as an array (one index per axis).
    public func element(at indices: [Int]) -> Float {
        storage.baseAddress[position(of: indices)]
    }

    /// Sets the element at `indices` given as an array (one index per axis).
    public mutating func setElement(_ value: Float, at indices: [Int]) {
        makeUniqueAndWritable()
        storage.baseAddress[position(of: indices)] = value
    }

    // MARK: - Raw access

    /// Makes the storage exclusively owned and free of aliasing (no stride-0 axes), copying if needed.
    public mutating func makeUniqueAndWritable() {
        let aliased = zip(shape, strides).contains { $0.0 > 1 && $0.1 == 0 }
        if !isKnownUniquelyReferenced(&storage) || aliased {
            self = contiguousCopy()
        }
    }

    /// Makes the tensor contiguous and exclusively owned, copying if needed.
    public mutating func makeContiguousAndUnique() {
        if !isKnownUniquelyReferenced(&storage) || !isContiguous {
            self = contiguousCopy()
        }
    }

    /// Calls `body` with a pointer to the elements in row-major order (copying first if this tensor is not contiguous).
    public func withUnsafeBufferPointer<Result>(_ body: (UnsafeBufferPointer<Float>) throws -> Result) rethrows -> Result {
        let source = contiguous()
        return try withExtendedLifetime(source) {
            try body(UnsafeBufferPointer(start: source.storage.baseAddress + source.offset, count: source.count))
        }
    }

    /// Calls `body` with a pointer to the elements in row-major order, for writing.
    /// The tensor is made contiguous and exclusively owned first.
    public mutating func withUnsafeMutableBufferPointer<Result>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> Result
    ) rethrows -> Result {
        makeContiguousAndUnique()
        return try body(UnsafeMutableBufferPointer(start: storage.baseAddress + offset, count: count))
    }

    /// A contiguous tensor with the same elements: `self` when already contiguous (no copy).
    public func contiguous() -> Tensor {
        isContiguous ? self : contiguousCopy()
    }

    /// A new contiguous tensor with its own storage and the same elements.
    public func contiguousCopy() -> Tensor {
        var result = Tensor(uninitializedShape: shape)
        StridedLoop.copy(from: self, into: result.storage.baseAddress)
        result.offset = 0
        return result
    }

    /// Replaces layout without checks; for views built inside the module.
    @usableFromInline
    func withLayout(shape: [Int], strides: [Int], offset: Int) -> Tensor {
        var view = self
        view.shape = shape
        view.strides = strides
        view.offset = offset
        return view
    }
}

extension Tensor: CustomStringConvertible {
    /// The shape and, for small tensors, the values.
    public var description: String {
        let values = count <= 64 ? scalars.map { "\($0)" }.joined(separator: ", ") : "\(count) values"
        return "Tensor(shape: \(shape), [\(values)])"
    }
}

extension Tensor: Equatable {
    /// Same shape and the same elements (layout may differ).
    public static func == (lhs: Tensor, rhs: Tensor) -> Bool {
        lhs.shape == rhs.shape && lhs.scalars == rhs.scalars
    }
}
