import EnvNetLayers
import Foundation

extension EnvNet {
    /// A network for new classes that starts from a trained one: every layer keeps the trained
    /// weights and BatchNorm statistics except the classifier (`fc7`), which is rebuilt for
    /// `classCount` classes with fresh He-normal weights drawn from `seed`.
    ///
    /// Freeze the front with ``Trainer/freeze(through:)`` to keep it fixed while the rest learns.
    ///
    /// - Parameters:
    ///   - source: The trained network (its variant and fc width are kept).
    ///   - classCount: The new number of classes.
    ///   - seed: The seed of the new classifier and of dropout.
    /// - Returns: The new network, in training mode.
    /// - Throws: ``EnvNetError/invalidConfiguration(_:)`` for a class count below 1.
    public static func fineTuning(from source: EnvNet, classCount: Int, seed: UInt64) throws -> EnvNet {
        var configuration = source.configuration
        configuration.classCount = classCount
        try configuration.validate()
        let network = EnvNet(configuration: configuration, seed: seed)
        var state = source.stateDictionary()
        for (key, value) in network.stateDictionary() where key.hasPrefix("fc7.") { state[key] = value }
        try network.loadStateDictionary(state, strict: true)
        network.train()
        return network
    }
}
