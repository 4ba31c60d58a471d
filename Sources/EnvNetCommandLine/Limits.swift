import ArgumentParser
import EnvNetModel
import Foundation

/// The ranges of the numeric options and the memory their values imply, checked in `validate()`
/// before any work: nothing the command line accepts may reach a trap (issue 14).
enum Limits {
    /// Epochs, milestones and validation intervals: at most this (doubling with --bc cannot overflow).
    static let epochs = 1...100_000
    /// Windows per step or per forward pass.
    static let batchSize = 1...65_536
    /// The width of fc5 and fc6.
    static let hiddenUnits = 1...65_536
    /// Synthetic clips per class (a clip is 5 s at 44.1 kHz, 441 kB as 16-bit WAV).
    static let clipsPerClass = 1...2_000
    /// Timed repetitions of the benchmark.
    static let repetitions = 1...1_000
    /// Frequencies of the filter analysis.
    static let frequencies = 2...100_000

    /// The machine's physical memory in bytes.
    static var physicalMemory: UInt64 { ProcessInfo.processInfo.physicalMemory }

    /// Throws a usage error naming the option, unless `value` is in `range`.
    static func check(_ value: Int, in range: ClosedRange<Int>, option: String) throws {
        guard range.contains(value) else {
            throw ValidationError("\(option) must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
        }
    }

    /// Throws a usage error naming the option, unless `value` is finite and in `range`.
    static func check(_ value: Double, in range: ClosedRange<Double>, option: String) throws {
        guard value.isFinite, range.contains(value) else {
            throw ValidationError("\(option) must be a finite number between \(range.lowerBound) and \(range.upperBound), got \(value)")
        }
    }

    /// An estimate of a training step's peak memory: weights, gradients and two optimizer
    /// buffers (4 copies of the parameters) plus the activations of each window: about 20 MB for
    /// EnvNet (`envnet bench` measures 1.8 GB for a batch of 64 at fc 4096) and 60 MB for EnvNet-v2.
    static func trainingBytes(network: NetworkArchitecture = .envnet, hiddenUnits: Int, batchSize: Int, classCount: Int = 1000) -> Double {
        let perWindow: Double
        let features: Int
        var secondHidden = hiddenUnits
        switch network {
        case .envnet: (features, perWindow) = (EnvNetConfiguration.flattenedFeatures, 20e6)
        case .envnetV2: (features, perWindow) = (EnvNetV2Configuration.flattenedFeatures, 60e6)
        // One hidden layer; a 2 x 60 x 41 image, its 80 x 4 x 36 convolution, small buffers.
        case .logMelCNN: (features, perWindow, secondHidden) = (LogMelCNNConfiguration.flattenedFeatures, 1e6, 0)
        }
        let parameters = Double(hiddenUnits) * Double(features + secondHidden + classCount + 2)
        return 16 * parameters + perWindow * Double(batchSize)
    }

    /// Throws a usage error naming both figures when the estimate exceeds the physical memory.
    static func checkMemory(_ bytes: Double, for what: String) throws {
        let available = Double(physicalMemory)
        guard bytes <= available else {
            throw ValidationError(String(format: "%@ needs about %.1f GB of memory, more than this machine's %.1f GB", what, bytes / 1e9, available / 1e9))
        }
    }
}
