import EnvNetModel
import Foundation

/// The models that ship with the package, trained by the project: use EnvNet without training.
///
/// ```swift
/// import EnvNetPretrained
///
/// let classifier = try SoundClassifier.pretrained()          // the ESC-10 model
/// let result = try classifier.classify(contentsOf: dogURL)
/// print(result.isSilent ? "silent" : result.best!.label)    // "dog"
/// ```
///
/// They live in this separate library product so that apps importing only `EnvNetModel` do not
/// carry them. The files are SwiftPM resources, found without `Bundle.module` (whose generated
/// accessor traps when the resource bundle is missing, as it is beside a copied or installed
/// executable): see ``locations``.
public enum PretrainedModel: String, Sendable, Hashable, CaseIterable {
    /// EnvNet (fc widths 1536) trained on all 400 clips of ESC-10, the 10-class subset of ESC-50
    /// (Karol J. Piczak, CC BY 3.0; recordings from freesound.org): dog, rain, sea waves, crying
    /// baby, clock tick, sneezing, helicopter, chainsaw, rooster, crackling fire. Stored in 16-bit
    /// floats (28.5 MB). The same recipe on folds 1-4 scores 81.25 % on fold 5 (Docs/pretrained-model.md).
    case esc10 = "esc10-envnet"

    /// The name of the resource bundle SwiftPM builds for this target.
    public static let bundleName = "EnvNet_EnvNetPretrained"

    /// The model's file name.
    public var fileName: String { rawValue + ".safetensors" }
    /// The attribution list of the recordings the model was trained on, shipped beside it.
    public static let attributionFileName = "LICENSE.md"

    /// The folders searched for the model files by default: the resource bundle beside the running
    /// executable (`EnvNet_EnvNetPretrained.resources` on Linux, `EnvNet_EnvNetPretrained.bundle` on
    /// Apple platforms), and in the main bundle's resources: where SwiftPM puts it, and where an
    /// installer must copy it. An app that keeps the files elsewhere passes its folder first to
    /// ``url(searching:)`` (the `envnet` command does so for `ENVNET_PRETRAINED_MODELS`).
    public static var locations: [URL] {
        var folders: [URL] = []
        var bases: [URL] = []
        if let executable = Bundle.main.executableURL { bases.append(executable.resolvingSymlinksInPath().deletingLastPathComponent()) }
        bases.append(Bundle.main.bundleURL)
        if let resources = Bundle.main.resourceURL { bases.append(resources) }
        for base in bases {
            for bundle in [bundleName + ".resources", bundleName + ".bundle", bundleName + ".bundle/Contents/Resources"] {
                folders.append(base.appendingPathComponent(bundle).appendingPathComponent("Model"))
            }
        }
        var seen = Set<String>()
        return folders.filter { seen.insert($0.standardizedFileURL.path).inserted }
    }

    /// The model file.
    ///
    /// - Parameter folders: Where to look (``locations`` by default).
    /// - Returns: The first existing file of that name.
    /// - Throws: ``PretrainedModelError/notFound(file:searched:)`` listing every folder searched.
    public func url(searching folders: [URL] = PretrainedModel.locations) throws -> URL {
        try Self.find(fileName, in: folders)
    }

    /// The attribution list shipped beside the model (the recordings' authors and licenses).
    ///
    /// - Parameter folders: Where to look (``locations`` by default).
    /// - Returns: The file.
    /// - Throws: ``PretrainedModelError/notFound(file:searched:)``.
    public func attributionURL(searching folders: [URL] = PretrainedModel.locations) throws -> URL {
        let model = try url(searching: folders)
        let attribution = model.deletingLastPathComponent().appendingPathComponent(Self.attributionFileName)
        guard FileManager.default.fileExists(atPath: attribution.path) else {
            throw PretrainedModelError.notFound(file: Self.attributionFileName, searched: [model.deletingLastPathComponent().path])
        }
        return attribution
    }

    static func find(_ name: String, in folders: [URL]) throws -> URL {
        for folder in folders {
            let candidate = folder.appendingPathComponent(name)
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isFolder), !isFolder.boolValue { return candidate }
        }
        throw PretrainedModelError.notFound(file: name, searched: folders.map(\.path))
    }
}

/// A bundled model that cannot be found.
public enum PretrainedModelError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file is in none of the folders searched (the resource bundle was not copied with the
    /// executable, for example).
    case notFound(file: String, searched: [String])

    public var description: String {
        switch self {
        case let .notFound(file, searched):
            return "the bundled model \(file) was not found; looked in \(searched.joined(separator: ", ")). "
                + "Copy \(PretrainedModel.bundleName).resources beside the executable, or name a folder holding \(file) "
                + "(ENVNET_PRETRAINED_MODELS for the envnet command), or pass a model file (--weights)"
        }
    }
}

extension SoundClassifier {
    /// A classifier for a model that ships with the package.
    ///
    /// - Parameters:
    ///   - model: The bundled model (ESC-10 by default).
    ///   - folders: Where to look for it (``PretrainedModel/locations`` by default).
    ///   - silenceThresholdDecibels: The detection threshold in dBFS; nil uses the model's.
    /// - Returns: The classifier, with the model's preprocessing and evaluation scheme.
    /// - Throws: ``PretrainedModelError`` when the model file is missing; the errors of
    ///   ``SoundClassifier/init(contentsOf:scheme:settings:silenceThresholdDecibels:batchSize:)``.
    public static func pretrained(_ model: PretrainedModel = .esc10, searching folders: [URL] = PretrainedModel.locations,
                                  silenceThresholdDecibels: Double? = nil) throws -> SoundClassifier {
        try SoundClassifier(contentsOf: model.url(searching: folders), silenceThresholdDecibels: silenceThresholdDecibels)
    }
}
