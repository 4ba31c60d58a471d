@testable import EnvNetModel
import Foundation
import Testing

/// Data-parallel training in one process: trainers on threads exchanging gradients, losses and
/// BatchNorm statistics through a ``ThreadGroup``, against one trainer on the whole batch. The
/// same trainer code runs under MPI (`MPI/`), where the 2-rank tests repeat this with processes.
@Suite("Data-parallel training: N members of B/N samples train as one process of B")
struct DataParallelTests {
    static let network = EnvNetConfiguration(classCount: 3, hiddenUnits: 8)

    /// Clips of noise with a class-dependent tone, longer than a window (so crops differ).
    static let clips: [LabeledClip] = (0..<12).map { index in
        var generator = SeededGenerator(seed: 7, stream: UInt64(index))
        let label = index % 3
        let samples = (0..<30_000).map { time in
            0.3 * Float.random(in: -1...1, using: &generator) + 0.5 * sin(Float(time) * 0.01 * Float(label + 1))
        }
        return LabeledClip(samples: samples, label: label, name: "clip\(index)")
    }

    static func recipe(batch: Int, epochs: Int = 1) -> TrainingConfiguration {
        var recipe = TrainingConfiguration()
        recipe.epochs = epochs
        recipe.batchSize = batch
        recipe.milestones = []
        recipe.seed = 5
        recipe.validationInterval = 0
        return recipe
    }

    /// Trains `size` members on threads (one trainer each); returns the trainers.
    static func trainGroup(size: Int, recipe: TrainingConfiguration, folder: URL? = nil, resume: Bool = false,
                           prepare: (Int, Trainer) -> Void = { _, _ in }) throws -> [Trainer] {
        let group = ThreadGroup(size: size, timeout: 120)
        let trainers = try (0..<size).map { rank in
            let trainer = try Trainer(network: EnvNet(configuration: network, seed: 3), training: clips, classNames: ["a", "b", "c"],
                                      configuration: recipe, runFolder: folder)
            trainer.dataParallelism = DataParallelism(communicator: group.member(rank), checksumInterval: 1, bucketBytes: 4096)
            prepare(rank, trainer)
            return trainer
        }
        let errors = ErrorBox()
        let done = DispatchGroup()
        for trainer in trainers {
            done.enter()
            let box = UncheckedBox(trainer)
            Thread.detachNewThread {
                do {
                    if resume { try box.value.resumeIfPossible() }
                    try box.value.run()
                } catch { errors.record(error) }
                done.leave()
            }
        }
        done.wait()
        if let error = errors.first { throw error }
        return trainers
    }

    /// The parameters as one vector within `tolerance` relative (‖a − b‖ / ‖b‖), every tensor
    /// within 1e-3 of its own norm, and the running statistics within 1e-4.
    ///
    /// Why the vector: training amplifies float rounding. A few steps on, the small BatchNorm
    /// shifts of two runs that differ only in summation order (one process, 1 thread against 2)
    /// differ by 1e-5 to 1e-3 of their own norm as ReLU and max-pool decisions flip, while the
    /// weights, and the parameters as a whole, stay within 1e-6 (MPI/Tests/run-mpi-tests.sh
    /// prints both for real clips).
    static func expectClose(_ network: any ClassifierNetwork, _ reference: any ClassifierNetwork, tolerance: Double = 1e-5, sourceLocation: SourceLocation = #_sourceLocation) {
        let expected = reference.stateDictionary()
        let parameterKeys = Set(reference.namedParameters().map(\.key))
        var squaredDifference: Double = 0, squaredNorm: Double = 0
        for (key, tensor) in network.stateDictionary() {
            guard let other = expected[key] else { Issue.record("\(key) missing", sourceLocation: sourceLocation); continue }
            let norm = other.scalars.reduce(0) { $0 + Double($1) * Double($1) }
            let difference = zip(tensor.scalars, other.scalars).reduce(0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
            let limit = parameterKeys.contains(key) ? 1e-3 : 1e-4
            #expect(difference.squareRoot() <= limit * max(norm.squareRoot(), 1e-6), "\(key): \(difference.squareRoot()) at norm \(norm.squareRoot())",
                    sourceLocation: sourceLocation)
            if parameterKeys.contains(key) {
                squaredDifference += difference
                squaredNorm += norm
            }
        }
        let relative = (squaredDifference / squaredNorm).squareRoot()
        #expect(relative <= tolerance, "parameters: relative difference \(relative)", sourceLocation: sourceLocation)
    }

    @Test("2 members x 2 give the parameters of 1 process x 4 after 3 steps (dropout on, BatchNorm synchronised)")
    func twoMembersEqualOneProcess() throws {
        let single = try Trainer(network: EnvNet(configuration: Self.network, seed: 3), training: Self.clips, classNames: ["a", "b", "c"],
                                 configuration: Self.recipe(batch: 4), runFolder: nil)
        try single.run()
        #expect(single.optimizer.stepCount == 3)
        let members = try Self.trainGroup(size: 2, recipe: Self.recipe(batch: 4))
        for member in members { Self.expectClose(member.network, single.network) }
        // The members end bit-identical to each other: they applied the same summed gradients.
        #expect(members[0].network.stateDictionary() == members[1].network.stateDictionary())
        // The epoch's loss and accuracy are the global batch's.
        #expect(abs(members[1].history[0].loss - single.history[0].loss) <= 1e-5 * abs(single.history[0].loss))
        #expect(members[1].history[0].trainAccuracy == single.history[0].trainAccuracy)
        // Training moved the weights, so the comparison compares something.
        #expect((single.network as! EnvNet).fc7.weight.value != EnvNet(configuration: Self.network, seed: 3).fc7.weight.value)
    }

    @Test("Batches that do not split evenly (5 over 2 members: 3 + 2; the last, 2: 1 + 1) train as one process")
    func unevenShares() throws {
        #expect(DataParallelism.share(of: 5, rank: 0, size: 3) == 0..<2)
        #expect(DataParallelism.share(of: 5, rank: 1, size: 3) == 2..<4)
        #expect(DataParallelism.share(of: 5, rank: 2, size: 3) == 4..<5)
        let single = try Trainer(network: EnvNet(configuration: Self.network, seed: 3), training: Self.clips, classNames: ["a", "b", "c"],
                                 configuration: Self.recipe(batch: 5), runFolder: nil)
        try single.run()  // batches of 5, 5 and 2
        let members = try Self.trainGroup(size: 2, recipe: Self.recipe(batch: 5))
        Self.expectClose(members[1].network, single.network)
    }

    @Test("A batch smaller than the group is refused before any step, naming the fix")
    func tooManyMembers() throws {
        // 12 clips in batches of 10: the last batch has 2 clips, one member would have none.
        #expect {
            try Self.trainGroup(size: 3, recipe: Self.recipe(batch: 10))
        } throws: { error in
            "\(error)".contains("a batch of 2 clips (the last batch of each epoch) cannot be shared by 3 ranks")
        }
    }

    @Test("A 2-member run resumed by 1 process continues as the uninterrupted 2-member run")
    func resumeWithOtherMemberCount() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("envnet-dp-resume-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let uninterrupted = try Self.trainGroup(size: 2, recipe: Self.recipe(batch: 4, epochs: 2))
        // One epoch with 2 members (rank 0 writes the checkpoint), the second with 1 process.
        _ = try Self.trainGroup(size: 2, recipe: Self.recipe(batch: 4, epochs: 1), folder: folder)
        let resumed = try Trainer(network: EnvNet(configuration: Self.network, seed: 99), training: Self.clips, classNames: ["a", "b", "c"],
                                  configuration: Self.recipe(batch: 4, epochs: 2), runFolder: folder)
        #expect(try resumed.resumeIfPossible())
        #expect(resumed.completedEpochs == 1)
        try resumed.run()
        Self.expectClose(resumed.network, uninterrupted[0].network)
        #expect(resumed.optimizer.stepCount == 6)
    }

    @Test("Members that start from other weights or other settings stop before the first step, naming the ranks")
    func disagreementIsCaught() throws {
        #expect {
            try Self.trainGroup(size: 2, recipe: Self.recipe(batch: 4)) { rank, trainer in
                if rank == 1, let network = trainer.network as? EnvNet { network.fc7.weight.value = network.fc7.weight.value + 1e-3 }
            }
        } throws: { error in
            "\(error)" == "data-parallel training could not start: the parameters of rank 1 differ from rank 0's"
        }
        #expect {
            try Self.trainGroup(size: 2, recipe: Self.recipe(batch: 4)) { rank, trainer in
                if rank == 1 { trainer.runSettings["fold"] = "2" }
            }
        } throws: { error in
            "\(error)".contains("rank 1 has other settings, clips or epochs done than rank 0")
        }
    }

    @Test("A member that never arrives fails the collective within its time limit, with a message")
    func aMissingMemberTimesOut() throws {
        let group = ThreadGroup(size: 2, timeout: 0.2)
        var values: [Float] = [1, 2]
        let started = Date()
        #expect(throws: CommunicatorError.timedOut(operation: "allreduce", seconds: 0.2)) { try group.member(0).allreduceSum(&values) }
        #expect(Date().timeIntervalSince(started) < 5)
    }
}

/// The first error of several threads.
final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Error?
    func record(_ error: Error) { lock.withLock { if stored == nil { stored = error } } }
    var first: Error? { lock.withLock { stored } }
}

/// Hands an object to the thread that uses it (one thread each, joined before use).
struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}


@Suite("Gradient buckets")
struct GradientBucketLayoutTests {
    @Test("Consecutive tensors up to the bucket size, a larger tensor alone")
    func layout() {
        // 4 bytes per element, buckets of 100 bytes (25 elements).
        #expect(DataParallelism.bucketRanges(elementCounts: [10, 10, 10, 40, 5, 5], bucketBytes: 100) == [0..<2, 2..<3, 3..<4, 4..<6])
        #expect(DataParallelism.bucketRanges(elementCounts: [], bucketBytes: 100).isEmpty)
        #expect(DataParallelism.bucketRanges(elementCounts: [30], bucketBytes: 100) == [0..<1])
    }
}
