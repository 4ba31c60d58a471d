@testable import EnvNetModel
import Foundation
import Testing

@Suite("Batches built in the background while the network trains")
struct BatchPrefetcherTests {
    @Test("The prefetcher's batches equal batches built in line, across buffer reuse", arguments: [false, true])
    func prefetchedBatchesEqualInlineBatches(betweenClass: Bool) throws {
        let clips = TrainingTests.clips()
        let recipe = TrainingTests.recipe(epochs: 2, betweenClass: betweenClass)
        let builder = try BatchBuilder(clips: clips, classCount: 3, windowLength: 24_014, sampleRate: 16_000, configuration: recipe)
        let prefetcher = BatchPrefetcher(builder: builder)
        for epoch in 0..<2 {
            let order = builder.order(epoch: epoch)
            for first in stride(from: 0, to: order.count, by: 4) {
                let indices = order[first..<min(order.count, first + 4)]
                prefetcher.request(indices: indices, epoch: epoch, firstPosition: first)
                let (batch, waited) = prefetcher.take()
                #expect(waited >= 0 && batch.buildSeconds > 0)
                var input = Tensor.zeros([0]), targets = Tensor.zeros([0])
                let labels = builder.fill(input: &input, targets: &targets, indices: indices, epoch: epoch, firstPosition: first)
                #expect(batch.labels == labels)
                #expect(batch.input.shape == input.shape && batch.input.scalars == input.scalars)
                #expect(batch.targets.scalars == targets.scalars)
            }
        }
        prefetcher.finish()
    }

    @Test("Epoch records say how long batches took to build and how long training waited for them")
    func epochRecordsCarryBuildAndWaitTimes() throws {
        let network = EnvNet(configuration: TrainingTests.configuration, seed: 3)
        let trainer = try Trainer(network: network, training: TrainingTests.clips(), classNames: ["a", "b", "c"],
                                  configuration: TrainingTests.recipe(epochs: 1, betweenClass: true), runFolder: nil)
        let record = try #require(try trainer.run().first)
        let build = try #require(record.preparationSeconds), wait = try #require(record.batchWaitSeconds)
        #expect(build > 0 && wait >= 0 && wait <= record.seconds)
    }
}
