import Foundation

/// A layer made of named layers run one after the other: ``Sequential``, and the blocks that
/// networks are built from (a convolution block, EnvNet's front end).
///
/// The forward and backward loops over the layers are written once, here
/// (``forwardLayers(_:through:)`` and ``backwardLayers(_:stoppingAfter:)``); a conforming type gets
/// ``Layer/forward(_:)``, ``Layer/backward(_:)`` and ``Layer/outputShape(forInputShape:)`` from
/// them, and a block with a fast path calls them where its fast path does not apply.
public protocol LayerChain: Layer {
    /// The layers in forward order with their names: the module's ``Module/children``, typed as
    /// layers. An empty name groups a block's layers under this chain's keys.
    var layers: [(name: String, layer: any Layer)] { get }
}

extension LayerChain {
    /// Each layer's forward pass on the previous one's output.
    /// - Parameter input: The input of the first layer.
    public func forward(_ input: Tensor) -> Tensor { forwardLayers(input) }

    /// Each layer's backward pass, last layer first.
    /// - Parameter gradientOutput: The gradient with respect to the last layer's output.
    public func backward(_ gradientOutput: Tensor) -> Tensor { backwardLayers(gradientOutput) }

    /// Chains the layers' output shapes.
    /// - Parameter inputShape: The shape of an input batch.
    public func outputShape(forInputShape inputShape: [Int]) throws -> [Int] {
        try layers.reduce(inputShape) { try $1.layer.outputShape(forInputShape: $0) }
    }

    /// The forward loop: runs the layers in order, up to and including the layer whose key (as in
    /// ``Module/namedLeaves()``, relative to this chain) is `key`, descending into nested chains.
    ///
    /// A nested chain that runs whole runs through its own ``Layer/forward(_:)``, so its fast path
    /// applies (EnvNet's fused front end, for features up to `pool2`). Under ``LayerProfiler`` each
    /// layer's time is recorded.
    /// - Parameters:
    ///   - input: The input of the first layer.
    ///   - key: The last layer to run; nil runs all.
    /// - Returns: That layer's output.
    public func forwardLayers(_ input: Tensor, through key: String? = nil) -> Tensor {
        var value = input
        for entry in layers {
            if let key {
                let keys = Self.leafKeys(of: entry)
                if keys.last != key, keys.contains(key) {
                    guard let chain = entry.layer as? any LayerChain else {
                        preconditionFailure("\(entry.layer.layerDescription) cannot stop its forward pass at \(key)")
                    }
                    return LayerProfiler.measure(entry.layer, .forward) { chain.forwardLayers(value, through: Self.innerKey(key, in: entry.name)) }
                }
                value = LayerProfiler.measure(entry.layer, .forward) { entry.layer.forward(value) }
                if keys.contains(key) { return value }
            } else {
                value = LayerProfiler.measure(entry.layer, .forward) { entry.layer.forward(value) }
            }
        }
        if let key { preconditionFailure("\(layerDescription) has no layer \(key)") }
        return value
    }

    /// The backward loop: runs the layers' backward passes, last first, stopping before the layer
    /// whose key is `key` (the layers up to it were frozen and kept nothing for a backward pass).
    /// - Parameters:
    ///   - gradientOutput: The gradient with respect to the last layer's output.
    ///   - key: The last layer not to run; nil runs all.
    /// - Returns: The gradient at that layer's output (at the chain's input when `key` is nil).
    public func backwardLayers(_ gradientOutput: Tensor, stoppingAfter key: String? = nil) -> Tensor {
        var gradient = gradientOutput
        for entry in layers.reversed() {
            if let key {
                let keys = Self.leafKeys(of: entry)
                if keys.last == key { return gradient }
                if keys.contains(key) {
                    guard let chain = entry.layer as? any LayerChain else {
                        preconditionFailure("\(entry.layer.layerDescription) cannot stop its backward pass after \(key)")
                    }
                    return LayerProfiler.measure(entry.layer, .backward) { chain.backwardLayers(gradient, stoppingAfter: Self.innerKey(key, in: entry.name)) }
                }
            }
            gradient = LayerProfiler.measure(entry.layer, .backward) { entry.layer.backward(gradient) }
            BackwardObserver.layerFinished(entry.layer)
        }
        if let key { preconditionFailure("\(layerDescription) has no layer \(key)") }
        return gradient
    }

    /// The keys of an entry's leaves relative to this chain (the entry's own name for a leaf).
    private static func leafKeys(of entry: (name: String, layer: any Layer)) -> [String] {
        if entry.layer.children.isEmpty { return [entry.name] }
        return entry.layer.namedLeaves().map { Module.join(entry.name, $0.key) }
    }

    private static func innerKey(_ key: String, in name: String) -> String {
        name.isEmpty ? key : String(key.dropFirst(name.count + 1))
    }
}

/// Runs its children one after the other; the backward pass runs their backward passes in reverse.
///
/// Children are named by their index (`0`, `1`, … as PyTorch's `nn.Sequential`) or by the names
/// given, which become the first part of their keys (`conv1.weight`, `bn1.running_mean`).
///
/// `[N, ...] -> [N, ...]` as its layers chain them.
public final class Sequential: Module, LayerChain {
    private var entries: [(name: String, layer: any Layer)]

    /// Children named `0`, `1`, … in order.
    /// - Parameter layers: the children in forward order.
    public init(_ layers: [any Layer]) {
        entries = layers.enumerated().map { (name: String($0.offset), layer: $0.element) }
        super.init()
    }

    /// Children named `0`, `1`, … in order.
    /// - Parameter layers: the children in forward order.
    public convenience init(_ layers: any Layer...) {
        self.init(layers)
    }

    /// Children with the given names, in order (like an `OrderedDict` in PyTorch).
    /// - Parameter named: (name, layer) pairs in forward order; names must be unique and contain no `.`.
    public init(named: KeyValuePairs<String, any Layer>) {
        entries = named.map { (name: $0.key, layer: $0.value) }
        super.init()
        Sequential.validateNames(entries.map(\.name))
    }

    /// Children with the given names, in order.
    /// - Parameter named: (name, layer) pairs in forward order; names must be unique and contain no `.`.
    public init(named: [(String, any Layer)]) {
        entries = named.map { (name: $0.0, layer: $0.1) }
        super.init()
        Sequential.validateNames(entries.map(\.name))
    }

    private static func validateNames(_ names: [String]) {
        precondition(Set(names).count == names.count, "Sequential: repeated child names in \(names)")
        precondition(names.allSatisfy { !$0.isEmpty && !$0.contains(".") }, "Sequential: child names must be non-empty and contain no '.': \(names)")
    }

    /// Adds a child at the end.
    /// - Parameters:
    ///   - layer: the new last layer.
    ///   - name: its name; its index when nil.
    public func append(_ layer: any Layer, named name: String? = nil) {
        let name = name ?? String(entries.count)
        Sequential.validateNames(entries.map(\.name) + [name])
        layer.train(isTraining)
        entries.append((name: name, layer: layer))
    }

    /// The number of children.
    public var count: Int { entries.count }

    /// The child at `index`.
    public subscript(index: Int) -> any Layer { entries[index].layer }

    /// The layers in forward order, with their names.
    public var layers: [(name: String, layer: any Layer)] { entries }

    /// The layers in forward order, with their names.
    public override var children: [(name: String, module: Module)] { entries.map { ($0.name, $0.layer) } }

    /// The layer in one line, with its configuration.
    public override var layerDescription: String { "Sequential()" }
}

/// Per-layer times of the forward and backward passes run inside ``record(_:)``, for benchmarks and
/// for finding where a custom network spends its time.
///
/// The loops of ``LayerChain`` report every layer they run, at every level (a block and then its
/// layers), so a block that ran as one fused operation shows no times for its layers. Outside
/// `record` the cost is one task-local read per layer.
public final class LayerProfiler: @unchecked Sendable {
    // @unchecked: `samples` is reached only under `lock`.

    /// Which pass a time belongs to.
    public enum Phase: Sendable { case forward, backward }

    /// One layer's time in one pass.
    public struct Sample: Sendable {
        /// The layer (match it with `ObjectIdentifier` of a module of ``Module/namedModules()``).
        public let layer: ObjectIdentifier
        /// The pass.
        public let phase: Phase
        /// Wall-clock seconds, the nested layers' included.
        public let seconds: Double
    }

    private let lock = NSLock()
    private var samples: [Sample] = []

    @TaskLocal private static var current: LayerProfiler?

    /// Runs `body` and returns what it returned with the times of every layer the loops ran in it.
    /// - Parameter body: The work to time.
    public static func record<Result>(_ body: () throws -> Result) rethrows -> (result: Result, samples: [Sample]) {
        let profiler = LayerProfiler()
        let result = try $current.withValue(profiler, operation: body)
        return (result, profiler.lock.withLock { profiler.samples })
    }

    /// Runs `body` for `layer`, timing it when a ``record(_:)`` is in progress.
    @inline(__always)
    package static func measure<Result>(_ layer: any Layer, _ phase: Phase, _ body: () -> Result) -> Result {
        guard let profiler = current else { return body() }
        let start = DispatchTime.now().uptimeNanoseconds
        let result = body()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        profiler.lock.withLock { profiler.samples.append(Sample(layer: ObjectIdentifier(layer), phase: phase, seconds: seconds)) }
        return result
    }
}

/// Hears of every layer whose backward pass the loops of ``LayerChain`` have finished, at every
/// level (the layers of a block, then the block), on the thread that runs the backward pass.
///
/// Data-parallel training uses it to start summing a layer's gradients over the processes while
/// the layers before it are still running their backward passes. Outside ``observe(_:during:)``
/// the cost is one task-local read per layer.
public final class BackwardObserver: @unchecked Sendable {
    // @unchecked: `handler` is called only on the thread that runs `observe`'s body.
    private let handler: (any Layer) -> Void

    @TaskLocal private static var current: BackwardObserver?

    private init(handler: @escaping (any Layer) -> Void) {
        self.handler = handler
    }

    /// Runs `body`, calling `handler` with each layer as soon as its backward pass has finished
    /// (its parameters' gradients are then final for this pass).
    /// - Parameters:
    ///   - handler: Called with the layer, on the calling thread.
    ///   - body: The work, typically one backward pass.
    public static func observe<Result>(_ handler: @escaping (any Layer) -> Void, during body: () throws -> Result) rethrows -> Result {
        try $current.withValue(BackwardObserver(handler: handler), operation: body)
    }

    @inline(__always)
    static func layerFinished(_ layer: any Layer) {
        current?.handler(layer)
    }
}
