import ArgumentParser
import EnvNetModel

/// `--precision fp32|bf16`, shared by `train`, `evaluate`, `predict` and `bench`: the operand
/// precision of the convolutions and fully connected layers (``ExecutionOptions/precision``).
struct PrecisionOption: ParsableArguments {
    @Option(help: ArgumentHelp(
        "The operand precision of the convolutions and fully connected layers: fp32, or bf16 with fp32 sums, weights, BatchNorm statistics, loss and softmax (PyTorch's bf16 autocast; on AVX512-BF16 CPUs, fp32 elsewhere with a notice).",
        valueName: "fp32|bf16"))
    var precision = "fp32"

    func validate() throws {
        guard ExecutionOptions.Precision(rawValue: precision) != nil else {
            throw ValidationError("--precision must be fp32 or bf16, not \(precision)")
        }
    }

    /// The precision asked for.
    var value: ExecutionOptions.Precision { ExecutionOptions.Precision(rawValue: precision) ?? .float32 }

    /// Puts the precision in effect for the whole process (the work of every thread the command
    /// starts), with a one-line notice where the CPU cannot run bf16.
    func apply() {
        ExecutionOptions.processWide.precision = value
        guard value == .bfloat16 else { return }
        if ExecutionOptions.processWide.matrixPrecision == .bfloat16 {
            printError("precision: bf16 operands with fp32 sums (AVX512-BF16)")
        } else {
            printError("notice: this CPU has no AVX512-BF16, so --precision bf16 runs in fp32")
        }
    }
}
