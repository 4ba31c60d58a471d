import EnvNetLayers
import Foundation

/// The collective operations data-parallel training needs from a group of processes (or of
/// threads): the group's size, this member's rank, and two collectives.
///
/// The model library has no MPI in it; an MPI implementation lives apart (issue 16), and
/// ``ThreadGroup`` runs a group of replicas in one process, for tests and for checking that N
/// members of 64/N samples train as one member of 64 does.
public protocol Communicator: AnyObject {
    /// This member's index, from 0.
    var rank: Int { get }
    /// The number of members.
    var size: Int { get }
    /// Replaces `values` on every member by their element-wise sum over the members.
    /// - Parameter values: The same count on every member.
    func allreduceSum(_ values: inout [Float]) throws
    /// Replaces `values` on every member by their element-wise sum over the members.
    /// - Parameter values: The same count on every member.
    func allreduceSum(_ values: inout [Double]) throws
    /// Every member's `values`, in rank order, on every member.
    /// - Parameter values: The same count on every member.
    func allgather(_ values: [Double]) throws -> [[Double]]
}

/// What can go wrong between the members of a data-parallel job.
public enum CommunicatorError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A member did not reach a collective in time (it died or hangs).
    case timedOut(operation: String, seconds: Double)
    /// The members disagree (different counts in one collective, different parameters).
    case mismatch(String)

    public var description: String {
        switch self {
        case let .timedOut(operation, seconds): return "\(operation): a member did not arrive within \(seconds) s"
        case let .mismatch(message): return message
        }
    }
}

/// Synchronised BatchNorm over a ``Communicator``: the members' per-channel statistics are
/// gathered and merged in rank order (Chan's formula, as the kernel merges rows), and the backward
/// pass's sums are summed. N members of 64/N samples then normalise as one member of 64 does, up
/// to the order of summation.
public final class SynchronizedBatchStatistics: BatchNormalization.StatisticsReducer {
    private let communicator: any Communicator
    /// The first error of a collective, if any (the kernel's hook cannot throw); the training
    /// step checks it after each pass.
    public private(set) var failure: Error?

    /// - Parameter communicator: The group.
    public init(communicator: any Communicator) {
        self.communicator = communicator
    }

    public func combine(_ moments: inout [BatchNormalization.Moments]) {
        guard failure == nil else { return }
        do {
            let gathered = try communicator.allgather(moments.flatMap { [$0.count, $0.mean, $0.squares] })
            moments = moments.indices.map { channel in
                gathered.map { BatchNormalization.Moments(count: $0[3 * channel], mean: $0[3 * channel + 1], squares: $0[3 * channel + 2]) }
                    .dropFirst().reduce(BatchNormalization.Moments(count: gathered[0][3 * channel], mean: gathered[0][3 * channel + 1],
                                                                  squares: gathered[0][3 * channel + 2])) { $0.merged(with: $1) }
            }
        } catch {
            failure = error
        }
    }

    public func sum(_ values: inout [Double]) {
        guard failure == nil else { return }
        do { try communicator.allreduceSum(&values) } catch { failure = error }
    }
}

/// A group of replicas in one process, one thread each: the collectives wait at a barrier (with a
/// time limit, so a member that never arrives fails the others instead of hanging them).
public final class ThreadGroup: @unchecked Sendable {
    // @unchecked: every mutable member is reached under `condition`'s lock.
    public let size: Int
    private let condition = NSCondition()
    private var arrived = 0
    private var generation = 0
    private var contributions: [[Double]]
    private var result: [[Double]] = []
    /// How long a collective waits for the other members.
    public let timeout: Double

    /// - Parameters:
    ///   - size: The number of members.
    ///   - timeout: Seconds a collective waits for the others.
    public init(size: Int, timeout: Double = 60) {
        precondition(size >= 1, "ThreadGroup: size must be at least 1")
        self.size = size
        self.timeout = timeout
        contributions = Array(repeating: [], count: size)
    }

    /// The communicator of member `rank`.
    public func member(_ rank: Int) -> any Communicator { Member(group: self, rank: rank) }

    /// Every member's values in rank order, once all have arrived.
    func exchange(rank: Int, values: [Double], operation: String) throws -> [[Double]] {
        condition.lock()
        defer { condition.unlock() }
        let myGeneration = generation
        contributions[rank] = values
        arrived += 1
        if arrived == size {
            result = contributions
            arrived = 0
            generation += 1
            condition.broadcast()
        } else {
            let deadline = Date(timeIntervalSinceNow: timeout)
            while generation == myGeneration {
                if !condition.wait(until: deadline) { throw CommunicatorError.timedOut(operation: operation, seconds: timeout) }
            }
        }
        let gathered = result
        guard gathered.allSatisfy({ $0.count == values.count }) else {
            throw CommunicatorError.mismatch("\(operation): the members sent \(gathered.map(\.count)) values")
        }
        return gathered
    }

    private final class Member: Communicator {
        let group: ThreadGroup
        let rank: Int
        var size: Int { group.size }

        init(group: ThreadGroup, rank: Int) {
            self.group = group
            self.rank = rank
        }

        func allreduceSum(_ values: inout [Float]) throws {
            // Summed in Double, in rank order: every member gets the same bits.
            let gathered = try group.exchange(rank: rank, values: values.map(Double.init), operation: "allreduce")
            values = values.indices.map { index in Float(gathered.reduce(0) { $0 + $1[index] }) }
        }

        func allreduceSum(_ values: inout [Double]) throws {
            let gathered = try group.exchange(rank: rank, values: values, operation: "allreduce")
            values = values.indices.map { index in gathered.reduce(0) { $0 + $1[index] } }
        }

        func allgather(_ values: [Double]) throws -> [[Double]] {
            try group.exchange(rank: rank, values: values, operation: "allgather")
        }
    }
}

extension EnvNet {
    /// Makes every BatchNorm of the network normalise with the statistics of the whole group's
    /// batch (nil: this member's batch alone).
    /// - Parameter reducer: The group's statistics.
    public func synchronizeBatchStatistics(_ reducer: (any BatchNormalization.StatisticsReducer)?) {
        for norm in [frontEnd.bn1, frontEnd.bn2, block3.normalization, block4.normalization] { norm.statisticsReducer = reducer }
    }

    /// Sums the parameters' gradients over the group and divides them by its size: each member's
    /// loss is the mean over its share of the batch, so the result is the gradient of the mean
    /// over the whole batch.
    /// - Parameter communicator: The group.
    public func averageGradients(over communicator: any Communicator) throws {
        let parameters = parameters()
        var flat = [Float]()
        flat.reserveCapacity(parameters.reduce(0) { $0 + $1.count })
        for parameter in parameters { flat += parameter.gradient.scalars }
        try communicator.allreduceSum(&flat)
        let scale = 1 / Float(communicator.size)
        var offset = 0
        for parameter in parameters {
            let count = parameter.count
            parameter.gradient = Tensor(flat[offset..<offset + count].map { $0 * scale }, shape: parameter.shape)
            offset += count
        }
    }
}
