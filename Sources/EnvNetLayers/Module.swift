import Foundation

/// A trainable tensor of a module together with the gradient that `backward` accumulates into it.
///
/// Modules own their parameters as `Parameter` objects, so an optimizer can update `value` in place
/// and every holder (the module, the optimizer's key list) sees the same tensor. Not `Sendable`:
/// a parameter belongs to one model, which is used from one task at a time.
public final class Parameter {
    /// The current value. Every change, in place or by assignment, advances ``version``.
    public var value: Tensor {
        get { storedValue }
        set { storedValue = newValue; version &+= 1 }
        // In place (an optimizer step), the stored tensor itself is yielded: an observer
        // (`didSet`) would hand out a copy, and every step would copy every weight.
        _modify {
            version &+= 1
            yield &storedValue
        }
    }
    private var storedValue: Tensor

    /// A number that changes whenever ``value`` does (an optimizer step, a load, an assignment), so
    /// that a layer can keep values derived from the weights (folded, transformed) and know when
    /// they are stale.
    public private(set) var version: UInt64 = 0
    /// The gradient of the loss with respect to ``value``, same shape. `backward` adds to it
    /// (like PyTorch's `.grad`); call ``Module/zeroGradients()`` before each training step.
    /// It is allocated (as zeros) on first use, so a network that only runs inference never
    /// holds a second copy of its weights' size (57 MB for the bundled model).
    public var gradient: Tensor {
        get {
            if storedGradient == nil { storedGradient = Tensor.zeros(value.shape) }
            return storedGradient!
        }
        set { storedGradient = newValue }
        // In-place updates (backward accumulating into it) must reach the stored tensor itself:
        // through a getter and a setter the storage would be shared for a moment and copied
        // (a `lazy var` did that, and tripled fc5's backward time).
        _modify {
            if storedGradient == nil { storedGradient = Tensor.zeros(value.shape) }
            yield &storedGradient!
        }
    }
    private var storedGradient: Tensor?

    /// - Parameter value: the initial value; the gradient starts as zeros of the same shape.
    public init(_ value: Tensor) {
        // Tensors are copy-on-write and every writer makes its storage unique first, so a
        // contiguous value is kept as it is: no second copy of the weights while a network is built.
        storedValue = value.isContiguous ? value : value.contiguousCopy()
    }

    /// The shape of ``value``.
    public var shape: [Int] { value.shape }
    /// The number of elements of ``value``.
    public var count: Int { value.count }

    /// Sets every element of ``gradient`` to zero, reusing its storage.
    public func zeroGradient() {
        if gradient.shape != value.shape {
            gradient = Tensor.zeros(value.shape)
        } else {
            gradient.withUnsafeMutableBufferPointer { buffer in
                if let base = buffer.baseAddress { base.update(repeating: 0, count: buffer.count) }
            }
        }
    }
}

/// A non-trainable tensor of a module's state, such as BatchNorm's running statistics.
///
/// Buffers are saved and loaded with the parameters (``Module/stateDictionary()``) but receive no
/// gradient and are never touched by an optimizer.
public final class Buffer {
    /// The current value. Every change advances ``version``.
    public var value: Tensor {
        get { storedValue }
        set { storedValue = newValue; version &+= 1 }
        _modify {
            version &+= 1
            yield &storedValue
        }
    }
    private var storedValue: Tensor

    /// A number that changes whenever ``value`` does (see ``Parameter/version``).
    public private(set) var version: UInt64 = 0

    /// - Parameter value: the initial value.
    public init(_ value: Tensor) {
        storedValue = value.contiguousCopy()
    }
}

/// A wrong input shape or a state dictionary that does not fit a model.
public enum LayerError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A layer was given an input it cannot take.
    case inputShape(layer: String, expected: String, actual: [Int])
    /// A state dictionary lacks a key the model has.
    case missingKey(String)
    /// A state dictionary has a key the model does not know (strict loading).
    case unexpectedKey(String)
    /// A state dictionary's tensor has the wrong shape.
    case shapeMismatch(key: String, expected: [Int], actual: [Int])

    /// The message: the layer or key, what was expected and what was found.
    public var description: String {
        switch self {
        case let .inputShape(layer, expected, actual):
            return "\(layer): expected input \(expected), got \(shapeText(actual))"
        case let .missingKey(key):
            return "state dictionary: missing key \(key)"
        case let .unexpectedKey(key):
            return "state dictionary: unexpected key \(key)"
        case let .shapeMismatch(key, expected, actual):
            return "state dictionary: \(key) should have shape \(shapeText(expected)), got \(shapeText(actual))"
        }
    }
}

/// The base class of every layer, block and model: named parameters and buffers, children, and a
/// training/evaluation mode. What a module computes is the ``Layer`` protocol's.
///
/// ## Writing a layer
/// Subclass `Module`, conform to ``Layer`` (the compiler then requires ``Layer/forward(_:)``,
/// ``Layer/backward(_:)`` and ``Layer/outputShape(forInputShape:)``), and override
/// - ``localParameters``, ``localBuffers`` and ``children`` so that keys, mode switches, optimizers
///   and checkpoints see everything (``unregisteredMembers()`` finds what was left out, and the
///   tests call it for every module of the library);
/// - optionally ``layerDescription`` and ``resetParameters(generator:)``.
///
/// Layers draw their initial parameters once, in their initialiser, from a generator the caller
/// passes in; nothing in the library draws from a process-wide generator.
///
/// ## Keys
/// Keys are PyTorch's: a parameter `weight` of a child `conv1` is `conv1.weight`; a child of an
/// unnamed ``Sequential`` is named by its index (`0.weight`). A child listed with an empty name is
/// a *block* that groups layers without adding a level to the keys: EnvNet's front end holds
/// `conv1` … `pool2`, whose keys stay `conv1.weight`, as in the weight-interchange convention.
///
/// ## Misuse
/// A layer given an input of the wrong shape stops the program with a message naming the layer,
/// the expected shape and the actual one, like the tensor core does for its operations. Code that
/// handles outside input can check first with the throwing ``Layer/outputShape(forInputShape:)``.
///
/// Modules are reference types with mutable caches and are not `Sendable`: one model is used from
/// one task at a time (the kernels inside parallelise on their own).
open class Module: CustomStringConvertible {
    /// True in training mode (the default): BatchNorm uses batch statistics, Dropout drops, and
    /// layers keep what their backward pass needs. False in evaluation mode.
    public private(set) var isTraining: Bool = true

    /// How many times this module allocated a fresh workspace (output or gradient buffer) instead of
    /// reusing the previous one. Stays constant across training steps of the same shapes once the
    /// first step has allocated everything; see ``totalWorkspaceAllocationCount``.
    public internal(set) var workspaceAllocationCount: Int = 0

    /// Creates a module in training mode.
    public init() {}

    // MARK: - To override

    /// This module's own parameters (not its children's), with their local names.
    open var localParameters: [(name: String, parameter: Parameter)] { [] }

    /// This module's own buffers (not its children's), with their local names.
    open var localBuffers: [(name: String, buffer: Buffer)] { [] }

    /// The direct sub-modules, with their names, in forward order. An empty name makes the child a
    /// block whose keys join this module's (see "Keys" above).
    open var children: [(name: String, module: Module)] { [] }

    /// One line describing the module without its children, like `Conv2d(1, 40, kernelSize: (1, 8))`.
    open var layerDescription: String { String(describing: type(of: self)) + "()" }

    /// Re-draws this module's own parameters (and resets its buffers) from `generator`, then those of
    /// its children in order. Layers with parameters override it and call `super`. Initialisers
    /// draw once by themselves; this is for starting a built model over.
    open func resetParameters(generator: inout SeededGenerator) {
        for child in children { child.module.resetParameters(generator: &generator) }
    }

    /// Called after ``isTraining`` changed, for modules that must react (the default does nothing).
    open func trainingModeDidChange() {}

    // MARK: - Modes

    /// Switches this module and all its descendants to training mode (or evaluation mode for `false`).
    public final func train(_ training: Bool = true) {
        if isTraining != training {
            isTraining = training
            trainingModeDidChange()
        }
        for child in children { child.module.train(training) }
    }

    /// Switches this module and all its descendants to evaluation mode.
    public final func eval() { train(false) }

    // MARK: - Parameters and buffers

    /// Every parameter of this module and its descendants, keyed by dotted path (`conv1.weight`),
    /// own parameters first, then each child's in order.
    public final func namedParameters() -> [(key: String, parameter: Parameter)] {
        var result = localParameters.map { (key: $0.name, parameter: $0.parameter) }
        for child in children {
            for entry in child.module.namedParameters() {
                result.append((key: Self.join(child.name, entry.key), parameter: entry.parameter))
            }
        }
        return result
    }

    /// Every buffer of this module and its descendants, keyed by dotted path (`bn1.running_mean`).
    public final func namedBuffers() -> [(key: String, buffer: Buffer)] {
        var result = localBuffers.map { (key: $0.name, buffer: $0.buffer) }
        for child in children {
            for entry in child.module.namedBuffers() {
                result.append((key: Self.join(child.name, entry.key), buffer: entry.buffer))
            }
        }
        return result
    }

    /// Every descendant module (this one first, key `""`), keyed by dotted path. A block listed with
    /// an empty name appears with its parent's key, and its layers under their own names.
    public final func namedModules() -> [(key: String, module: Module)] {
        var result: [(key: String, module: Module)] = [(key: "", module: self)]
        for child in children {
            for entry in child.module.namedModules() {
                result.append((key: Self.join(child.name, entry.key), module: entry.module))
            }
        }
        return result
    }

    /// The layers without children (the leaves of the tree), keyed by dotted path, in forward
    /// order: `conv1`, `bn1`, … `fc7` for EnvNet, whatever blocks group them.
    public final func namedLeaves() -> [(key: String, module: Module)] {
        namedModules().filter { $0.module.children.isEmpty && $0.module !== self }
    }

    static func join(_ prefix: String, _ key: String) -> String {
        prefix.isEmpty ? key : key.isEmpty ? prefix : prefix + "." + key
    }

    // MARK: - Registration

    /// The stored properties of this module and its descendants that hold a parameter, a buffer or
    /// a module (directly, optionally or in an array) that the module's tree does not reach through
    /// ``localParameters``, ``localBuffers`` and ``children``: a parameter that no optimizer would
    /// update and no checkpoint would save. Empty for a correct module; the tests check every module
    /// of the library, and a test of your own can check yours.
    /// - Returns: `TypeName.property` for each unregistered member, and `duplicate key K` for a
    ///   key that two parameters or buffers share (two blocks listed under empty names whose
    ///   layers have the same names: only one of them would be saved).
    public final func unregisteredMembers() -> [String] {
        var problems: [String] = []
        var visited = Set<ObjectIdentifier>()
        func check(_ module: Module) {
            guard visited.insert(ObjectIdentifier(module)).inserted else { return }
            // Registered means reachable from this module's tree: a network may keep a typed
            // reference to a layer that one of its blocks registers.
            let parameters = Set(module.namedParameters().map { ObjectIdentifier($0.parameter) })
            let buffers = Set(module.namedBuffers().map { ObjectIdentifier($0.buffer) })
            let children = Set(module.namedModules().map { ObjectIdentifier($0.module) })
            var mirror: Mirror? = Mirror(reflecting: module)
            while let current = mirror {
                for member in current.children {
                    let label = "\(current.subjectType).\(member.label ?? "?")"
                    for value in Self.referencedObjects(member.value) {
                        switch value {
                        case let parameter as Parameter where !parameters.contains(ObjectIdentifier(parameter)):
                            problems.append(label)
                        case let buffer as Buffer where !buffers.contains(ObjectIdentifier(buffer)):
                            problems.append(label)
                        case let child as Module where child !== module && !children.contains(ObjectIdentifier(child))
                            // A reference up the tree (a parent) is not a child to register.
                            && !child.namedModules().contains(where: { $0.module === module }):
                            problems.append(label)
                        default:
                            break
                        }
                    }
                }
                mirror = current.superclassMirror
            }
            for child in module.children { check(child.module) }
        }
        check(self)
        var seen = Set<String>()
        for key in namedParameters().map(\.key) + namedBuffers().map(\.key) where !seen.insert(key).inserted {
            problems.append("duplicate key \(key)")
        }
        return problems
    }

    /// The parameters, buffers and modules a stored value holds: itself, an optional's payload, or
    /// an array's or a tuple's elements.
    private static func referencedObjects(_ value: Any) -> [AnyObject] {
        if let object = value as? Parameter { return [object] }
        if let object = value as? Buffer { return [object] }
        if let object = value as? Module { return [object] }
        let mirror = Mirror(reflecting: value)
        switch mirror.displayStyle {
        case .optional, .tuple, .struct, .enum, .dictionary, .set:
            return mirror.children.flatMap { referencedObjects($0.value) }
        case .collection:
            // Arrays of numbers (pooling indices: millions of them) hold nothing to find.
            guard let first = mirror.children.first?.value,
                  type(of: first) is AnyClass || Mirror(reflecting: first).displayStyle.map({ [.optional, .tuple].contains($0) }) == true
            else { return [] }
            return mirror.children.flatMap { referencedObjects($0.value) }
        default:
            return []
        }
    }

    /// The parameters in ``namedParameters()`` order.
    public final func parameters() -> [Parameter] { namedParameters().map(\.parameter) }

    /// The gradients of all parameters, keyed like ``namedParameters()``.
    public final func namedGradients() -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: namedParameters().map { ($0.key, $0.parameter.gradient) })
    }

    /// Sets every parameter gradient to zero (storage is reused).
    public final func zeroGradients() {
        for entry in namedParameters() { entry.parameter.zeroGradient() }
    }

    /// The number of trainable scalars (the sum of the parameters' element counts; buffers excluded).
    public final var parameterCount: Int { namedParameters().reduce(0) { $0 + $1.parameter.count } }

    /// The number of scalars held in buffers (running statistics).
    public final var bufferElementCount: Int { namedBuffers().reduce(0) { $0 + $1.buffer.value.count } }

    /// ``workspaceAllocationCount`` summed over this module and its descendants.
    public final var totalWorkspaceAllocationCount: Int {
        namedModules().reduce(0) { $0 + $1.module.workspaceAllocationCount }
    }

    /// Parameters and buffers by key, as PyTorch's `state_dict()` (the tensors share storage with the
    /// model until either side writes).
    public final func stateDictionary() -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for entry in namedParameters() { result[entry.key] = entry.parameter.value }
        for entry in namedBuffers() { result[entry.key] = entry.buffer.value }
        return result
    }

    /// Loads parameters and buffers by key, as PyTorch's `load_state_dict`.
    ///
    /// Nothing is changed unless every check passes.
    /// - Parameters:
    ///   - state: tensors by dotted key.
    ///   - strict: when true (the default), a key the model does not have is an error too.
    /// - Throws: ``LayerError`` naming the first missing or unexpected key or wrong shape.
    public final func loadStateDictionary(_ state: [String: Tensor], strict: Bool = true) throws {
        let parameters = namedParameters(), buffers = namedBuffers()
        var known = Set<String>()
        for (key, shape) in parameters.map({ ($0.key, $0.parameter.shape) }) + buffers.map({ ($0.key, $0.buffer.value.shape) }) {
            known.insert(key)
            guard let tensor = state[key] else { throw LayerError.missingKey(key) }
            guard tensor.shape == shape else { throw LayerError.shapeMismatch(key: key, expected: shape, actual: tensor.shape) }
        }
        if strict, let extra = state.keys.sorted().first(where: { !known.contains($0) }) {
            throw LayerError.unexpectedKey(extra)
        }
        for entry in parameters { entry.parameter.value = state[entry.key]!.contiguousCopy() }
        for entry in buffers { entry.buffer.value = state[entry.key]!.contiguousCopy() }
    }

    // MARK: - Description

    /// The module tree in PyTorch's style: one line per module, children indented under their names.
    public var description: String {
        let children = self.children
        if children.isEmpty { return layerDescription }
        var lines = [layerDescription.hasSuffix("()") ? String(layerDescription.dropLast()) : layerDescription + " ("]
        for child in children {
            let text = child.module.description.replacingOccurrences(of: "\n", with: "\n  ")
            lines.append(child.name.isEmpty ? "  \(text)" : "  (\(child.name)): \(text)")
        }
        lines.append(")")
        return lines.joined(separator: "\n")
    }

    /// A table of every parameter and buffer (key, shape, element count) with the totals.
    public final var parameterSummary: String {
        var rows: [(String, String, String)] = [("key", "shape", "count")]
        for entry in namedParameters() {
            rows.append((entry.key, shapeText(entry.parameter.shape), String(entry.parameter.count)))
        }
        for entry in namedBuffers() {
            rows.append((entry.key + " (buffer)", shapeText(entry.buffer.value.shape), String(entry.buffer.value.count)))
        }
        let widths = (rows.map(\.0.count).max() ?? 0, rows.map(\.1.count).max() ?? 0)
        var lines = rows.map { row in
            row.0.padding(toLength: widths.0, withPad: " ", startingAt: 0) + "  "
                + row.1.padding(toLength: widths.1, withPad: " ", startingAt: 0) + "  " + row.2
        }
        lines.append("trainable parameters: \(parameterCount), buffer elements: \(bufferElementCount)")
        return lines.joined(separator: "\n")
    }
}

/// What a module computes: a forward pass and its backward pass, and the shapes it takes.
///
/// A protocol rather than methods of ``Module`` to override, so that a layer without a forward or a
/// backward pass does not compile. Shapes use PyTorch's layout; every implementation states its own
/// in one comment line (`[N, C, H, W] -> [N, O, OH, OW]`).
///
/// A forward pass changes the layer's state even in evaluation mode (its output buffers, caches
/// of derived weights), so one layer is run from one thread at a time; ``SoundClassifier``
/// serialises its calls for that reason.
public protocol Layer: Module {
    /// The forward pass. In training mode (``Module/isTraining``) keep what the backward pass needs
    /// (usually a reference to the input, which costs no copy).
    /// - Parameter input: The input batch.
    /// - Returns: The output batch. It may share storage with the layer's own buffers, which the
    ///   next call overwrites in place when nobody else holds them.
    func forward(_ input: Tensor) -> Tensor

    /// The backward pass for the most recent training-mode ``forward(_:)``: **adds** the gradient of
    /// every parameter into its ``Parameter/gradient`` and returns the gradient with respect to the
    /// input; then drops the cached references so the next step can reuse buffers in place.
    /// - Parameter gradientOutput: The gradient of the loss with respect to the output of `forward`.
    /// - Returns: The gradient of the loss with respect to the input of `forward`, in its shape.
    func backward(_ gradientOutput: Tensor) -> Tensor

    /// The shape of the output for an input of `inputShape`.
    /// - Parameter inputShape: The shape of an input batch.
    /// - Throws: ``LayerError/inputShape(layer:expected:actual:)`` when the layer cannot take that input.
    func outputShape(forInputShape inputShape: [Int]) throws -> [Int]
}

extension Layer {
    /// Runs ``forward(_:)``.
    /// - Parameter input: The input batch.
    public func callAsFunction(_ input: Tensor) -> Tensor { forward(input) }

    /// Stops with the standard message for an input of the wrong shape (the layer's own description,
    /// what it expects, what it got). See ``outputShape(forInputShape:)`` for the throwing form.
    func checkInput(_ shape: [Int]) {
        do {
            _ = try outputShape(forInputShape: shape)
        } catch {
            fatalError("\(error)")
        }
    }
}
