import Foundation

/// Runs its children one after the other; the backward pass runs their backward passes in reverse.
///
/// Children are named by their index (`0`, `1`, … as PyTorch's `nn.Sequential`) or by the names
/// given, which become the first part of their keys (`conv1.weight`, `bn1.running_mean`).
public final class Sequential: Module {
    private var entries: [(name: String, module: Module)]

    /// Children named `0`, `1`, … in order.
    /// - Parameter layers: the children in forward order.
    public init(_ layers: [Module]) {
        entries = layers.enumerated().map { (name: String($0.offset), module: $0.element) }
        super.init()
    }

    /// Children named `0`, `1`, … in order.
    /// - Parameter layers: the children in forward order.
    public convenience init(_ layers: Module...) {
        self.init(layers)
    }

    /// Children with the given names, in order (like an `OrderedDict` in PyTorch).
    /// - Parameter named: (name, module) pairs in forward order; names must be unique and contain no `.`.
    public init(named: KeyValuePairs<String, Module>) {
        entries = named.map { (name: $0.key, module: $0.value) }
        super.init()
        Sequential.validateNames(entries.map(\.name))
    }

    /// Children with the given names, in order.
    /// - Parameter named: (name, module) pairs in forward order; names must be unique and contain no `.`.
    public init(named: [(String, Module)]) {
        entries = named.map { (name: $0.0, module: $0.1) }
        super.init()
        Sequential.validateNames(entries.map(\.name))
    }

    private static func validateNames(_ names: [String]) {
        precondition(Set(names).count == names.count, "Sequential: repeated child names in \(names)")
        precondition(names.allSatisfy { !$0.isEmpty && !$0.contains(".") }, "Sequential: child names must be non-empty and contain no '.': \(names)")
    }

    /// Adds a child at the end.
    /// - Parameters:
    ///   - module: the new last layer.
    ///   - name: its name; its index when nil.
    public func append(_ module: Module, named name: String? = nil) {
        let name = name ?? String(entries.count)
        Sequential.validateNames(entries.map(\.name) + [name])
        module.train(isTraining)
        entries.append((name: name, module: module))
    }

    /// The number of children.
    public var count: Int { entries.count }

    /// The child at `index`.
    public subscript(index: Int) -> Module { entries[index].module }

    /// The child named `name`, or nil.
    public subscript(name: String) -> Module? { entries.first { $0.name == name }?.module }

    /// The layers in forward order, with their names.
    public override var children: [(name: String, module: Module)] { entries }

    /// The layer in one line, with its configuration.
    public override var layerDescription: String { "Sequential()" }

    /// Chains the children's output shapes.
    /// - Parameter inputShape: the shape of an input batch.
    public override func outputShape(forInputShape inputShape: [Int]) throws -> [Int] {
        try entries.reduce(inputShape) { try $1.module.outputShape(forInputShape: $0) }
    }

    /// Each child's forward pass on the previous one's output.
    /// - Parameter input: the input of the first child.
    public override func forward(_ input: Tensor) -> Tensor {
        var value = input
        for entry in entries { value = entry.module.forward(value) }
        return value
    }

    /// Each child's backward pass, last child first.
    /// - Parameter gradientOutput: the gradient with respect to the output of the last child.
    public override func backward(_ gradientOutput: Tensor) -> Tensor {
        var gradient = gradientOutput
        for entry in entries.reversed() { gradient = entry.module.backward(gradient) }
        return gradient
    }
}
