import Dispatch
import EnvNetLayers
import Foundation

/// Builds the next training batch on a background thread while the network trains on the current
/// one, so cropping, silence rejection, mixing and augmentation overlap with the network's work.
///
/// Batches are double-buffered: the one being built and the one being trained on never share
/// storage. Every example is derived from the seed, the epoch and its position, so the batches
/// are the same as when built in line (the resume and kill tests compare whole runs bit for bit).
final class BatchPrefetcher: @unchecked Sendable {
    /// A built batch and the seconds its building took on the background thread.
    struct Batch {
        var input: Tensor
        var targets: Tensor
        var labels: [Int]
        var buildSeconds: Double
    }

    private let builder: BatchBuilder
    private let queue = DispatchQueue(label: "EnvNetModel.BatchPrefetcher", qos: .userInitiated)
    private let group = DispatchGroup()
    // Written by the background thread only between `request` and the `wait` in `take`.
    private var building: Batch?
    /// The batch handed out by the last `take`, whose buffers the request after the next `take`
    /// fills (by then the network has finished with it).
    private var handedOut: Batch?
    private var spare: Batch?
    private var inFlight = false

    init(builder: BatchBuilder) {
        self.builder = builder
    }

    /// Starts building the batch of `indices` (clip indices at positions `firstPosition…` of `epoch`).
    func request(indices: ArraySlice<Int>, epoch: Int, firstPosition: Int) {
        precondition(!inFlight, "BatchPrefetcher: take the pending batch before requesting another")
        inFlight = true
        building = spare ?? Batch(input: Tensor.zeros([0]), targets: Tensor.zeros([0]), labels: [], buildSeconds: 0)
        spare = nil
        group.enter()
        // The background thread works under the options of the thread that trains.
        let options = ExecutionOptions.current
        queue.async { [self] in
            ExecutionOptions.withOptions(options) { build(indices: indices, epoch: epoch, firstPosition: firstPosition) }
        }
    }

    private func build(indices: ArraySlice<Int>, epoch: Int, firstPosition: Int) {
        let started = DispatchTime.now().uptimeNanoseconds
        var batch = building!
        building = nil  // so that the batch's tensors are uniquely referenced while filled
        batch.labels = builder.fill(input: &batch.input, targets: &batch.targets, indices: indices, epoch: epoch, firstPosition: firstPosition,
                                    concurrently: false)
        batch.buildSeconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        building = batch
        group.leave()
    }

    /// Waits for the requested batch and hands it over. The batch stays untouched until the next
    /// call; then its buffers take the batch requested after that.
    /// - Returns: the batch and the seconds this call waited for it.
    func take() -> (batch: Batch, waitSeconds: Double) {
        precondition(inFlight, "BatchPrefetcher: no batch requested")
        let started = DispatchTime.now().uptimeNanoseconds
        group.wait()
        inFlight = false
        let batch = building!
        building = nil
        spare = handedOut
        handedOut = batch
        return (batch, Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
    }

    /// Waits for a batch still being built (before the trainer stops early, for example on divergence).
    func finish() {
        if inFlight { _ = take() }
    }
}
