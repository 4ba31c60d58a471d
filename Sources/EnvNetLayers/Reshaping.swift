import Foundation

/// Merges axes `startAxis...endAxis` into one (PyTorch's `Flatten`, by default everything after the
/// batch axis: `[N, C, H, W] -> [N, C·H·W]` in (C, H, W) order).
///
/// A view of a contiguous input (no copy); the backward pass reshapes the gradient back.
public final class Flatten: Module, Layer {
    /// The first merged axis (negative counts from the end).
    public let startAxis: Int
    /// The last merged axis (negative counts from the end).
    public let endAxis: Int
    private var cachedInputShape: [Int]?

    /// - Parameters:
    ///   - startAxis: the first axis to merge (PyTorch's default 1).
    ///   - endAxis: the last axis to merge (PyTorch's default −1, the last).
    public init(startAxis: Int = 1, endAxis: Int = -1) {
        self.startAxis = startAxis
        self.endAxis = endAxis
        super.init()
    }

    /// The layer in one line, with its configuration.
    public override var layerDescription: String { "Flatten(startAxis: \(startAxis), endAxis: \(endAxis))" }

    /// The input shape with axes `startAxis...endAxis` merged.
    /// - Parameter inputShape: the shape of an input batch.
    public func outputShape(forInputShape inputShape: [Int]) throws -> [Int] {
        let rank = inputShape.count
        let start = startAxis < 0 ? startAxis + rank : startAxis, end = endAxis < 0 ? endAxis + rank : endAxis
        guard start >= 0, end < rank, start <= end else {
            throw LayerError.inputShape(layer: layerDescription, expected: "a rank covering axes \(startAxis)...\(endAxis)", actual: inputShape)
        }
        return Array(inputShape[..<start]) + [inputShape[start...end].reduce(1, *)] + Array(inputShape[(end + 1)...])
    }

    /// The merged view. `[N, C, H, W] -> [N, C·H·W]`
    /// - Parameter input: any tensor whose rank covers the merged axes.
    public func forward(_ input: Tensor) -> Tensor {
        checkInput(input.shape)
        cachedInputShape = isTraining ? input.shape : nil
        return input.reshaped((try? outputShape(forInputShape: input.shape)) ?? [])
    }

    /// The gradient reshaped to the input's shape. `[N, C·H·W] -> [N, C, H, W]`
    /// - Parameter gradientOutput: the gradient with respect to the last training-mode output.
    public func backward(_ gradientOutput: Tensor) -> Tensor {
        guard let shape = cachedInputShape else { missingCache() }
        cachedInputShape = nil
        return gradientOutput.reshaped(shape)
    }
}

/// Exchanges two axes (EnvNet swaps C and H after `pool2`: `[N, 40, 1, 150] -> [N, 1, 40, 150]`).
///
/// When the swapped layout is still contiguous (as when one of the axes has extent 1) the output is a
/// view of the input; otherwise the layer copies it into a buffer of its own, reused between steps.
/// The backward pass swaps the gradient back the same way.
public final class SwapAxes: Module, Layer {
    /// One axis to exchange (negative counts from the end).
    public let firstAxis: Int
    /// The other axis to exchange (negative counts from the end).
    public let secondAxis: Int
    private var output = Tensor.zeros([0])
    private var gradientInput = Tensor.zeros([0])
    private var hasForward = false

    /// - Parameters:
    ///   - firstAxis: one axis to exchange.
    ///   - secondAxis: the other axis to exchange.
    public init(_ firstAxis: Int, _ secondAxis: Int) {
        self.firstAxis = firstAxis
        self.secondAxis = secondAxis
        super.init()
    }

    /// - Parameters:
    ///   - firstAxis: one axis to exchange.
    ///   - secondAxis: the other axis to exchange.
    public convenience init(firstAxis: Int, secondAxis: Int) {
        self.init(firstAxis, secondAxis)
    }

    /// The layer in one line, with its configuration.
    public override var layerDescription: String { "SwapAxes(\(firstAxis), \(secondAxis))" }

    /// The input shape with the two extents exchanged.
    /// - Parameter inputShape: the shape of an input batch.
    public func outputShape(forInputShape inputShape: [Int]) throws -> [Int] {
        let rank = inputShape.count
        let a = firstAxis < 0 ? firstAxis + rank : firstAxis, b = secondAxis < 0 ? secondAxis + rank : secondAxis
        guard a >= 0, a < rank, b >= 0, b < rank else {
            throw LayerError.inputShape(layer: layerDescription, expected: "a rank with axes \(firstAxis) and \(secondAxis)", actual: inputShape)
        }
        var shape = inputShape
        shape.swapAt(a, b)
        return shape
    }

    private func swapped(_ tensor: Tensor, into buffer: inout Tensor) -> Tensor {
        let view = tensor.swappingAxes(firstAxis, secondAxis)
        if view.isContiguous { return view }
        prepare(&buffer, shape: view.shape)
        buffer.assign(view)
        return buffer
    }

    /// The input with the two axes exchanged.
    /// - Parameter input: any tensor with both axes.
    public func forward(_ input: Tensor) -> Tensor {
        checkInput(input.shape)
        hasForward = isTraining
        return swapped(input, into: &output)
    }

    /// The gradient with the two axes exchanged back.
    /// - Parameter gradientOutput: the gradient with respect to the last training-mode output.
    public func backward(_ gradientOutput: Tensor) -> Tensor {
        guard hasForward else { missingCache() }
        hasForward = false
        return swapped(gradientOutput, into: &gradientInput)
    }
}
