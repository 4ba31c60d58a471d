import EnvNetModel
import Foundation

/// The environment variables the `envnet` command reads, once, at start; the libraries read none
/// (they take ``ExecutionOptions`` and arguments instead). Listed for users in Docs/environment.md.
struct CommandEnvironment: Sendable {
    /// The execution options from `ENVNET_THREADS`, `ENVNET_WINOGRAD` and `ENVNET_FUSED_FRONT_END`.
    var executionOptions: ExecutionOptions
    /// `ENVNET_PRETRAINED_MODELS`: a folder searched first for the bundled models.
    var pretrainedModelFolders: [URL]
    /// `ENVNET_TEST_WRITE_PAUSE_MS` and `ENVNET_TEST_WRITE_PAUSE_NAME`: the kill test's pause in
    /// atomic writes.
    var testWritePause: AtomicFile.TestPause
    /// The preprocessing cache's folder: `$XDG_CACHE_HOME/envnet` or `~/.cache/envnet`.
    var cacheFolder = PreparedDataset.defaultCacheFolder

    /// The environment as this process started, read once (a `static let` is initialised once,
    /// thread-safely).
    static let reading = Result { try CommandEnvironment(ProcessInfo.processInfo.environment) }

    /// The settings read at start (the defaults if the reading failed, which ``apply()`` reports).
    static var current: CommandEnvironment {
        (try? reading.get()) ?? CommandEnvironment(executionOptions: .automatic, pretrainedModelFolders: [],
                                                   testWritePause: AtomicFile.TestPause(microseconds: 0, name: nil))
    }

    /// Reads the variables.
    /// - Parameter environment: The process environment.
    /// - Throws: A message naming the variable whose value is not one it takes.
    init(_ environment: [String: String]) throws {
        var options = ExecutionOptions.automatic
        if let text = environment["ENVNET_THREADS"], !text.isEmpty {
            guard let count = Int(text), (1...1024).contains(count) else {
                throw ValidationMessage("ENVNET_THREADS must be a whole number from 1 to 1024, got '\(terminalSafe(text))'")
            }
            options.threadCount = count
        }
        func switchValue(_ name: String) throws -> Bool {
            guard let text = environment[name], !text.isEmpty else { return true }
            switch text {
            case "1", "on", "true": return true
            case "0", "off", "false": return false
            default: throw ValidationMessage("\(name) must be 0 or 1, got '\(terminalSafe(text))'")
            }
        }
        options.usesWinograd = try switchValue("ENVNET_WINOGRAD")
        options.usesFusedOperations = try switchValue("ENVNET_FUSED_FRONT_END")
        executionOptions = options
        pretrainedModelFolders = environment["ENVNET_PRETRAINED_MODELS"].flatMap { $0.isEmpty ? nil : [URL(fileURLWithPath: $0)] } ?? []
        var pause = AtomicFile.TestPause(microseconds: 0, name: nil)
        if let text = environment["ENVNET_TEST_WRITE_PAUSE_MS"], let milliseconds = UInt32(text), (1...10_000).contains(milliseconds) {
            pause = AtomicFile.TestPause(microseconds: milliseconds * 1000, name: environment["ENVNET_TEST_WRITE_PAUSE_NAME"])
        }
        testWritePause = pause
        cacheFolder = PreparedDataset.cacheFolder(xdgCacheHome: environment["XDG_CACHE_HOME"])
    }

    init(executionOptions: ExecutionOptions, pretrainedModelFolders: [URL], testWritePause: AtomicFile.TestPause) {
        self.executionOptions = executionOptions
        self.pretrainedModelFolders = pretrainedModelFolders
        self.testWritePause = testWritePause
    }

    /// Reads this process's environment and puts it in effect, before any command runs.
    /// - Throws: As ``init(_:)``.
    static func apply() throws {
        let environment = try reading.get()
        ExecutionOptions.processWide = environment.executionOptions
        AtomicFile.testPause = environment.testWritePause
    }
}

/// A one-line error for the command's own checks outside argument parsing.
struct ValidationMessage: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
