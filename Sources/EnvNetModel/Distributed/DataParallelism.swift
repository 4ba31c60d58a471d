import EnvNetLayers
import Foundation

/// How a ``Trainer`` shares its training with the other members of a ``Communicator``: every
/// member holds the whole network, prepares its share of every global batch, and the members sum
/// their gradients, so that every member applies the same SGD step.
///
/// What makes N members of B/N samples train as one process of B:
/// - The sequence of global batches, every sample's crop, mixing partner and gain, and every
///   sample's dropout masks are keyed by the seed, the epoch and the sample's position in the
///   epoch, never by the member.
/// - Each member's loss gradient is scaled by its share of the batch (n_r / B), so the summed
///   gradient is that of the mean loss over the global batch, even when a batch does not split
///   evenly (the last batch of an epoch: the first members take one sample more).
/// - BatchNorm normalises with the statistics of the global batch (``SynchronizedBatchStatistics``).
///   Per-member statistics would change what the network computes with the number of members;
///   synchronising costs two small collectives per BatchNorm layer and pass (2–3 · C values).
public struct DataParallelism {
    /// The group.
    public let communicator: any Communicator
    /// Every this many SGD steps (and at each checkpoint) the members compare a checksum of the
    /// parameters and stop with an error naming the step when they differ; 0 compares only at
    /// checkpoints.
    public var checksumInterval: Int
    /// The size of a gradient bucket: one sum over the members starts as soon as the backward
    /// pass has finished the layers of a bucket.
    public var bucketBytes: Int

    /// - Parameters:
    ///   - communicator: The group.
    ///   - checksumInterval: Steps between parameter checksums (0: only at checkpoints).
    ///   - bucketBytes: The bytes of a gradient bucket (25 MiB, as PyTorch's DDP).
    public init(communicator: any Communicator, checksumInterval: Int = 50, bucketBytes: Int = defaultBucketBytes) {
        self.communicator = communicator
        self.checksumInterval = max(0, checksumInterval)
        self.bucketBytes = max(1, bucketBytes)
    }

    /// How gradients are grouped into buckets: consecutive tensors (given last layer first, as
    /// the backward pass finishes them) up to `bucketBytes` of Float, a larger tensor alone.
    /// - Parameters:
    ///   - elementCounts: Each tensor's element count, in the order the backward pass finishes them.
    ///   - bucketBytes: The bytes of a bucket.
    /// - Returns: The index range of each bucket in `elementCounts`.
    public static func bucketRanges(elementCounts: [Int], bucketBytes: Int) -> [Range<Int>] {
        var ranges: [Range<Int>] = [], start = 0, bytes = 0
        for (index, count) in elementCounts.enumerated() {
            if index > start, bytes + 4 * count > bucketBytes {
                ranges.append(start..<index)
                start = index
                bytes = 0
            }
            bytes += 4 * count
        }
        if start < elementCounts.count { ranges.append(start..<elementCounts.count) }
        return ranges
    }

    /// 25 MiB, as PyTorch's DDP.
    public static let defaultBucketBytes = 25 << 20

    /// The positions within a batch of `count` samples that member `rank` of `size` trains on:
    /// contiguous, the first `count % size` members one more.
    public static func share(of count: Int, rank: Int, size: Int) -> Range<Int> {
        let base = count / size, extra = count % size
        let start = rank * base + Swift.min(rank, extra)
        return start..<start + base + (rank < extra ? 1 : 0)
    }
}

/// The gradients of the trainable parameters, summed over the members in buckets, each started as
/// soon as the backward pass has finished its layers (in the order the pass finishes them, so
/// every member starts the same sums in the same order).
final class GradientBuckets {
    private let communicator: any Communicator
    /// Parameters in the order their gradients become final (the reverse of the network's order).
    private let buckets: [[Parameter]]
    private let bucketOfParameter: [ObjectIdentifier: Int]
    private var pendingCount: [Int] = []
    private var nextBucket = 0
    private var inFlight: [(bucket: Int, sums: PendingAllreduce)] = []
    /// Seconds the training thread waited for sums after its backward pass (communication not hidden).
    private(set) var waitSeconds: Double = 0

    /// - Parameters:
    ///   - parameters: The trainable parameters, in the network's order.
    ///   - communicator: The group.
    ///   - bucketBytes: The bytes of a bucket (a larger parameter has a bucket of its own).
    init(parameters: [Parameter], communicator: any Communicator, bucketBytes: Int) {
        self.communicator = communicator
        let reversed = Array(parameters.reversed())
        let buckets = DataParallelism.bucketRanges(elementCounts: reversed.map(\.count), bucketBytes: bucketBytes).map { Array(reversed[$0]) }
        self.buckets = buckets
        var index: [ObjectIdentifier: Int] = [:]
        for (bucket, members) in buckets.enumerated() { for parameter in members { index[ObjectIdentifier(parameter)] = bucket } }
        bucketOfParameter = index
    }

    /// The number of buckets.
    var count: Int { buckets.count }

    /// Runs `backward`, starting the sum of each bucket once the pass has finished all its
    /// parameters, then waits for every sum and stores it as the parameters' gradients.
    /// - Parameter backward: The backward pass.
    /// - Returns: What `backward` returned.
    func reduce<Result>(during backward: () throws -> Result) throws -> Result {
        pendingCount = buckets.map(\.count)
        nextBucket = 0
        inFlight = []
        var failure: Error?
        var seen = Set<ObjectIdentifier>()
        let result = try BackwardObserver.observe({ [self] layer in
            guard failure == nil else { return }
            for parameter in layer.parameters() {
                let id = ObjectIdentifier(parameter)
                guard let bucket = bucketOfParameter[id], seen.insert(id).inserted else { continue }
                pendingCount[bucket] -= 1
            }
            do { try startReadyBuckets(all: false) } catch { failure = error }
        }, during: backward)
        if let failure { throw failure }
        // Frozen layers and layers outside the loops never report: their buckets start now.
        try startReadyBuckets(all: true)
        let started = DispatchTime.now().uptimeNanoseconds
        for (bucket, pending) in inFlight {
            let sums = try pending.finish()
            var offset = 0
            for parameter in buckets[bucket] {
                let count = parameter.count
                parameter.gradient = Tensor(Array(sums[offset..<offset + count]), shape: parameter.shape)
                offset += count
            }
        }
        waitSeconds += Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        inFlight = []
        return result
    }

    /// Starts, in bucket order, every bucket whose parameters are all final (or all with `all`).
    private func startReadyBuckets(all: Bool) throws {
        while nextBucket < buckets.count, all || pendingCount[nextBucket] == 0 {
            var flat = [Float]()
            flat.reserveCapacity(buckets[nextBucket].reduce(0) { $0 + $1.count })
            for parameter in buckets[nextBucket] {
                parameter.gradient.withUnsafeBufferPointer { flat.append(contentsOf: $0) }
            }
            inFlight.append((nextBucket, try communicator.startAllreduceSum(flat)))
            nextBucket += 1
        }
    }

    /// Clears the wait time.
    func resetWaitTime() { waitSeconds = 0 }
}


extension Communicator {
    /// Whether every member has the same `value` (two exact halves, so no Double rounding).
    /// - Returns: The ranks whose value differs from rank 0's.
    func ranksDiffering(from value: UInt64) throws -> [Int] {
        let gathered = try allgather([Double(value >> 32), Double(value & 0xFFFF_FFFF)])
        return gathered.indices.filter { gathered[$0] != gathered[0] }
    }
}
