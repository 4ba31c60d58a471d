import Foundation

/// The rectified linear unit, `max(x, 0)` element-wise. Any shape; the output has the input's shape.
///
/// The backward pass passes the gradient where the output is positive (the derivative at 0 is
/// taken as 0, as PyTorch does). It reads the layer's own output buffer, so no input is cached.
public final class ReLU: Module, Layer {
    private var output = Tensor.zeros([0])
    private var gradientInput = Tensor.zeros([0])
    private var hasForward = false

    /// Creates a ReLU layer.
    public override init() { super.init() }

    /// The layer in one line, with its configuration.
    public override var layerDescription: String { "ReLU()" }

    /// The output has the shape of the input.
    /// - Parameter inputShape: the shape of an input batch.
    public func outputShape(forInputShape inputShape: [Int]) throws -> [Int] { inputShape }

    /// `max(x, 0)`. Same shape in and out.
    /// - Parameter input: any tensor.
    public func forward(_ input: Tensor) -> Tensor {
        let input = input.contiguous()
        prepare(&output, shape: input.shape)
        let x = input.readPointer, y = output.writePointer
        let total = input.count
        forEachBlock(count: total) { range in
            for index in range { let value = x[index]; y[index] = value > 0 ? value : 0 }
        }
        withExtendedLifetime(input) {}
        hasForward = isTraining
        return output
    }

    /// The gradient where the output is positive, 0 elsewhere. Same shape in and out.
    /// - Parameter gradientOutput: the gradient with respect to the last training-mode output.
    public func backward(_ gradientOutput: Tensor) -> Tensor {
        guard hasForward else { missingCache() }
        hasForward = false
        precondition(gradientOutput.shape == output.shape,
                     "ReLU.backward: expected output gradient \(shapeText(output.shape)), got \(shapeText(gradientOutput.shape))")
        let gradientOutput = gradientOutput.contiguous()
        prepare(&gradientInput, shape: output.shape)
        let y = output.readPointer, dy = gradientOutput.readPointer, dx = gradientInput.writePointer
        forEachBlock(count: output.count) { range in
            // Both loads happen unconditionally, so the select vectorises.
            for index in range { let gradient = dy[index], value = y[index]; dx[index] = value > 0 ? gradient : 0 }
        }
        withExtendedLifetime(gradientOutput) {}
        return gradientInput
    }
}

/// Runs `body` over `0..<count` in contiguous blocks, in parallel when the work is large enough to pay
/// for the threads.
@inline(__always)
func forEachBlock(count: Int, minimumPerWorker: Int = 1 << 16, _ body: (Range<Int>) -> Void) {
    if count < 2 * minimumPerWorker || Parallel.workerCount == 1 {
        body(0..<count)
    } else {
        _ = Parallel.forEachChunk(count: count) { _, range in body(range) }
    }
}
