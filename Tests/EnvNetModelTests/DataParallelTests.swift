@testable import EnvNetModel
import Foundation
import Testing

/// Data-parallel training in one process: replicas on threads exchanging gradients and BatchNorm
/// statistics through a ``ThreadGroup``, against one network trained on the whole batch.
@Suite("Data-parallel training: N replicas of B/N samples train as one of B")
struct DataParallelTests {
    static let configuration = EnvNetConfiguration(classCount: 3, hiddenUnits: 8)
    static let globalBatch = 4

    /// The window and label of the sample at `position` of the run: the same for every split.
    static func sample(_ position: Int) -> (window: [Float], label: Int) {
        var generator = SeededGenerator(seed: 7, stream: UInt64(position))
        let window = (0..<configuration.inputLength).map { _ in generator.nextUniform(in: -0.5..<0.5) }
        return (window, position % configuration.classCount)
    }

    /// Trains `network` for `steps` steps on its share of each global batch: positions
    /// `[rank · B/size, (rank + 1) · B/size)` of every batch of B.
    static func train(_ network: EnvNet, steps: Int, rank: Int, size: Int, communicator: (any Communicator)?, applyStep: Bool = true) throws {
        let share = globalBatch / size
        var optimizer = SGD(learningRate: 0.01, momentum: 0.9, weightDecay: 5e-4, nesterov: true)
        let statistics = communicator.map { SynchronizedBatchStatistics(communicator: $0) }
        network.synchronizeBatchStatistics(statistics)
        network.train()
        for step in 0..<steps {
            let first = step * globalBatch + rank * share
            let samples = (first..<first + share).map(sample)
            let input = Tensor(samples.flatMap(\.window), shape: [share, 1, 1, configuration.inputLength])
            for (layer, dropout) in network.dropouts.enumerated() {
                dropout.sampleStreams = Dropout.SampleStreams(seed: 11, firstStream: Trainer.dropoutStream(layer: layer, epoch: 0, position: first))
            }
            network.zeroGradients()
            let (_, gradient) = Losses.softmaxCrossEntropy(logits: network(input), labels: samples.map(\.label))
            _ = network.backward(gradient)
            if let communicator { try network.averageGradients(over: communicator) }
            if let failure = statistics?.failure { throw failure }
            if applyStep || step + 1 < steps { optimizer.step(network) }
        }
    }

    @Test func debugOneStep() throws {
        let single = EnvNet(configuration: Self.configuration, seed: 3)
        try Self.train(single, steps: 1, rank: 0, size: 1, communicator: nil, applyStep: true)
        let group = ThreadGroup(size: 2, timeout: 120)
        let replicas = [EnvNet(configuration: Self.configuration, seed: 3), EnvNet(configuration: Self.configuration, seed: 3)]
        let done = DispatchGroup()
        for rank in 0..<2 {
            done.enter()
            let replica = UncheckedBox(replicas[rank])
            Thread.detachNewThread {
                try? Self.train(replica.value, steps: 1, rank: rank, size: 2, communicator: group.member(rank), applyStep: true)
                done.leave()
            }
        }
        done.wait()
        let expected = Dictionary(uniqueKeysWithValues: single.namedParameters().map { ($0.key, $0.parameter.value) })
        for (key, parameter) in replicas[0].namedParameters() {
            let reference = expected[key]!
            let scale = reference.scalars.map(abs).max() ?? 0
            let difference = zip(parameter.value.scalars, reference.scalars).map { abs($0 - $1) }.max() ?? 0
            print("DEBUG \(key) \(difference / max(scale, 1e-12)) scale \(scale)")
        }
        for (key, buffer) in replicas[0].namedBuffers() {
            let reference = single.namedBuffers().first { $0.key == key }!.buffer.value
            let difference = zip(buffer.value.scalars, reference.scalars).map { abs($0 - $1) }.max() ?? 0
            print("DEBUG buffer \(key) \(difference)")
        }
    }

    @Test("2 replicas x 2 samples give the parameters of 1 network x 4 after 3 steps (dropout on, BatchNorm synchronised)")
    func twoReplicasEqualOneNetwork() throws {
        let single = EnvNet(configuration: Self.configuration, seed: 3)
        try Self.train(single, steps: 3, rank: 0, size: 1, communicator: nil)

        let group = ThreadGroup(size: 2, timeout: 120)
        let replicas = [EnvNet(configuration: Self.configuration, seed: 3), EnvNet(configuration: Self.configuration, seed: 3)]
        let errors = ErrorBox()
        let done = DispatchGroup()
        for rank in 0..<2 {
            done.enter()
            let replica = UncheckedBox(replicas[rank])
            Thread.detachNewThread {
                do { try Self.train(replica.value, steps: 3, rank: rank, size: 2, communicator: group.member(rank)) } catch { errors.record(error) }
                done.leave()
            }
        }
        done.wait()
        #expect(errors.first == nil, "\(String(describing: errors.first))")

        let expected = single.stateDictionary()
        for replica in replicas {
            for (key, tensor) in replica.stateDictionary() {
                let reference = try #require(expected[key])
                // Relative to the tensor's norm: float rounding (about 1e-7 per step) is the only difference.
                let norm = reference.scalars.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
                let difference = zip(tensor.scalars, reference.scalars).reduce(0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }.squareRoot()
                print("DEBUG3 \(key) \(difference / max(norm, 1e-12))")
                #expect(difference <= 1e-5 * max(norm, 1e-6), "\(key): \(difference) at norm \(norm)")
            }
        }
        // The replicas end bit-identical to each other: they applied the same averaged gradients.
        #expect(replicas[0].stateDictionary() == replicas[1].stateDictionary())
        // Training moved the weights, so the comparison above compares something.
        #expect(single.fc7.weight.value != EnvNet(configuration: Self.configuration, seed: 3).fc7.weight.value)
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

/// Hands a network to the thread that trains it (one thread per replica, joined before use).
struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
