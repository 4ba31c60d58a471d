@testable import EnvNetModel
import Foundation
import Testing

/// bf16 fully connected layers in evaluation mode (groundwork of issue 19): the logits stay within
/// 2e-2 of their scale of the fp32 ones, the weights are repacked when they change, and training
/// mode stays fp32.
@Suite("bf16 fully connected layers")
struct PrecisionTests {
    static var bf16: ExecutionOptions {
        var options = ExecutionOptions.current
        options.linearPrecision = .bfloat16
        return options
    }

    static func relativeDifference(_ value: Tensor, _ reference: Tensor) -> Float {
        let scale = reference.scalars.map(abs).max() ?? 0
        return (zip(value.scalars, reference.scalars).map { abs($0 - $1) }.max() ?? .infinity) / Swift.max(scale, 1e-12)
    }

    @Test("EnvNet's logits in bf16 are within 2e-2 of fp32's, and differ from them where the CPU has AVX512-BF16")
    func logitsWithinTolerance() throws {
        let network = EnvNet(configuration: EnvNetConfiguration(classCount: 10, hiddenUnits: 256), seed: 4)
        network.eval()
        var generator = SeededGenerator(seed: 5)
        let input = Tensor.uniform([4, 1, 1, network.inputLength], in: -1..<1, generator: &generator)
        let exact = network(input).contiguousCopy()
        let mixed = ExecutionOptions.withOptions(Self.bf16) { network(input).contiguousCopy() }
        let difference = Self.relativeDifference(mixed, exact)
        #expect(difference < 2e-2, "\(difference)")
        if BFloat16Matmul.hasAVX512BF16 {
            #expect(difference > 0, "bf16 gave exactly the fp32 logits: the bf16 path did not run")
        } else {
            #expect(difference == 0)
        }
        // New weights are repacked: the bf16 output follows them.
        var state = network.stateDictionary()
        state["fc7.weight"] = state["fc7.weight"]!.scalars.map { -$0 }.withUnsafeBufferPointer { Tensor(Array($0), shape: [10, 256]) }
        try network.loadStateDictionary(state, strict: true)
        let exactAfter = network(input).contiguousCopy()
        let mixedAfter = ExecutionOptions.withOptions(Self.bf16) { network(input).contiguousCopy() }
        #expect(Self.relativeDifference(mixedAfter, exactAfter) < 2e-2)
        // Training mode ignores the option.
        network.train()
        network.dropouts.forEach { $0.sampleStreams = Dropout.SampleStreams(seed: 1, firstStream: 0) }
        let trainingExact = network(input).contiguousCopy()
        network.dropouts.forEach { $0.sampleStreams = Dropout.SampleStreams(seed: 1, firstStream: 0) }
        let trainingMixed = ExecutionOptions.withOptions(Self.bf16) { network(input).contiguousCopy() }
        #expect(trainingMixed.scalars == trainingExact.scalars)
    }
}
