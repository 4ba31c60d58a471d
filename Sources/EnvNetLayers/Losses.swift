import Foundation

/// Classification losses on logits `[N, K]`, averaged over the batch. Each returns the loss and its
/// gradient with respect to the logits, ready for the model's `backward`.
///
/// Both work row by row from the log-sum-exp with the row maximum subtracted, so large logits
/// (±1e4 and beyond) neither overflow nor lose the loss; sums are accumulated in `Double`.
/// A misshaped argument (not `[N, K]`, a label out of range, targets of another shape) stops the
/// program with a message naming the shapes, like the layers.
public enum Losses {
    /// Softmax cross-entropy with integer labels (PyTorch's `cross_entropy`, mean reduction):
    /// `L = (1/N) Σₙ [logΣₖ exp(zₙₖ) − zₙ,yₙ]`, `∂L/∂z = (softmax(z) − onehot(y)) / N`.
    /// - Parameters:
    ///   - logits: unnormalised scores `[N, K]`.
    ///   - labels: `N` class indices in `0..<K`.
    /// - Returns: the mean loss and its gradient `[N, K]`.
    public static func softmaxCrossEntropy(logits: Tensor, labels: [Int]) -> (loss: Float, gradient: Tensor) {
        var gradient = Tensor.zeros([0])
        let loss = softmaxCrossEntropy(logits: logits, labels: labels, gradient: &gradient)
        return (loss, gradient)
    }

    /// ``softmaxCrossEntropy(logits:labels:)`` writing the gradient into `gradient` (its storage is
    /// reused when it already has the logits' shape).
    /// - Parameters:
    ///   - logits: unnormalised scores `[N, K]`.
    ///   - labels: `N` class indices in `0..<K`.
    ///   - gradient: receives `∂L/∂logits` `[N, K]`.
    /// - Returns: the mean loss.
    public static func softmaxCrossEntropy(logits: Tensor, labels: [Int], gradient: inout Tensor) -> Float {
        let (batch, classes) = checkLogits(logits, operation: "softmaxCrossEntropy")
        precondition(labels.count == batch, "softmaxCrossEntropy: \(labels.count) labels for logits \(shapeText(logits.shape))")
        if let bad = labels.first(where: { $0 < 0 || $0 >= classes }) {
            fatalError("softmaxCrossEntropy: label \(bad) out of range 0..<\(classes) for logits \(shapeText(logits.shape))")
        }
        let logits = logits.contiguous()
        prepareGradient(&gradient, shape: logits.shape)
        let z = logits.readPointer, g = gradient.writePointer
        let scale = 1 / Float(batch)
        var total: Double = 0
        for row in 0..<batch {
            let zRow = z + row * classes, gRow = g + row * classes
            let logSumExp = softmaxRow(zRow, gRow, classes)
            total += logSumExp - Double(zRow[labels[row]])
            for k in 0..<classes { gRow[k] *= scale }
            gRow[labels[row]] -= scale
        }
        withExtendedLifetime(logits) {}
        return Float(total / Double(batch))
    }

    /// Kullback–Leibler divergence from soft targets to the softmax of the logits, as between-class
    /// learning uses (PyTorch's `kl_div(log_softmax(z), t, reduction: "batchmean")`):
    /// `L = (1/N) Σₙ Σₖ tₙₖ (log tₙₖ − log softmax(z)ₙₖ)` with `0 · log 0 = 0`,
    /// `∂L/∂z = (softmax(z) · Σₖ tₙₖ − t) / N` (which is `(softmax(z) − t) / N` for distributions).
    /// - Parameters:
    ///   - logits: unnormalised scores `[N, K]`.
    ///   - targets: non-negative target distributions `[N, K]` (rows usually sum to 1).
    /// - Returns: the mean loss and its gradient `[N, K]`.
    public static func klDivergence(logits: Tensor, targets: Tensor) -> (loss: Float, gradient: Tensor) {
        var gradient = Tensor.zeros([0])
        let loss = klDivergence(logits: logits, targets: targets, gradient: &gradient)
        return (loss, gradient)
    }

    /// ``klDivergence(logits:targets:)`` writing the gradient into `gradient` (its storage is reused
    /// when it already has the logits' shape).
    /// - Parameters:
    ///   - logits: unnormalised scores `[N, K]`.
    ///   - targets: non-negative target distributions `[N, K]`.
    ///   - gradient: receives `∂L/∂logits` `[N, K]`.
    /// - Returns: the mean loss.
    public static func klDivergence(logits: Tensor, targets: Tensor, gradient: inout Tensor) -> Float {
        let (batch, classes) = checkLogits(logits, operation: "klDivergence")
        precondition(targets.shape == logits.shape,
                     "klDivergence: targets \(shapeText(targets.shape)) do not match logits \(shapeText(logits.shape))")
        let logits = logits.contiguous(), targets = targets.contiguous()
        prepareGradient(&gradient, shape: logits.shape)
        let z = logits.readPointer, t = targets.readPointer, g = gradient.writePointer
        let scale = 1 / Float(batch)
        var total: Double = 0
        for row in 0..<batch {
            let zRow = z + row * classes, tRow = t + row * classes, gRow = g + row * classes
            let logSumExp = softmaxRow(zRow, gRow, classes)
            var mass: Float = 0
            for k in 0..<classes {
                let target = tRow[k]
                precondition(target >= 0, "klDivergence: negative target \(target) in row \(row)")
                mass += target
                if target > 0 {
                    let logProbability = Double(zRow[k]) - logSumExp
                    total += Double(target) * (Foundation.log(Double(target)) - logProbability)
                }
            }
            for k in 0..<classes { gRow[k] = (gRow[k] * mass - tRow[k]) * scale }
        }
        withExtendedLifetime((logits, targets)) {}
        return Float(total / Double(batch))
    }

    private static func checkLogits(_ logits: Tensor, operation: String) -> (Int, Int) {
        precondition(logits.rank == 2 && logits.shape[0] > 0 && logits.shape[1] > 0,
                     "\(operation): expected logits [N, K] with N, K > 0, got \(shapeText(logits.shape))")
        return (logits.shape[0], logits.shape[1])
    }

    private static func prepareGradient(_ gradient: inout Tensor, shape: [Int]) {
        if gradient.shape == shape { gradient.makeContiguousAndUnique() } else { gradient = Tensor.zeros(shape) }
    }

    /// Writes softmax(z) of one row into `p` and returns log Σ exp(z) (computed with the maximum removed).
    private static func softmaxRow(_ z: UnsafePointer<Float>, _ p: UnsafeMutablePointer<Float>, _ count: Int) -> Double {
        var maximum = -Float.infinity
        for k in 0..<count where z[k] > maximum { maximum = z[k] }
        var sum: Double = 0
        for k in 0..<count {
            let e = Foundation.exp(Double(z[k] - maximum))
            p[k] = Float(e)
            sum += e
        }
        let inverse = 1 / sum
        for k in 0..<count { p[k] = Float(Double(p[k]) * inverse) }
        return Double(maximum) + Foundation.log(sum)
    }
}
