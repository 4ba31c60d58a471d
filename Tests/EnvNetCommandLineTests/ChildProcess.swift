import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs the built `envnet` executable as a child process, for the tests that need a real process
/// (SIGKILL, peak memory).
enum ChildProcess {
    /// The built `envnet` executable: `$ENVNET_EXECUTABLE` when set, otherwise the `envnet` next to
    /// the test bundle (SwiftPM puts both in the same products folder, whatever `--scratch-path`;
    /// `swift build --build-tests` and `swift test` build it). Nil when it cannot be found.
    static let executable: URL? = {
        let fileManager = FileManager.default
        if let path = ProcessInfo.processInfo.environment["ENVNET_EXECUTABLE"] {
            return fileManager.isExecutableFile(atPath: path) ? URL(fileURLWithPath: path) : nil
        }
        var starts: [URL] = Bundle.allBundles.map(\.bundleURL) + [Bundle.main.bundleURL]
        #if os(Linux)
        if let exe = try? fileManager.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            starts.append(URL(fileURLWithPath: exe).deletingLastPathComponent())
        }
        #endif
        for start in starts {
            var folder = start.standardizedFileURL
            // The products folder holds the test bundle (Linux: an executable; macOS: a .xctest
            // bundle whose executable sits three levels down).
            for _ in 0..<4 {
                let candidate = folder.appendingPathComponent("envnet")
                var isFolder: ObjCBool = false
                if fileManager.fileExists(atPath: candidate.path, isDirectory: &isFolder), !isFolder.boolValue,
                   fileManager.isExecutableFile(atPath: candidate.path) {
                    return candidate
                }
                folder = folder.deletingLastPathComponent()
            }
        }
        return nil
    }()

    /// The executable, or a recorded issue explaining how to build it.
    static func requireExecutable(sourceLocation: SourceLocation = #_sourceLocation) throws -> URL {
        try #require(executable, "the envnet executable was not found next to the test bundle: build it (swift build --build-tests) or set ENVNET_EXECUTABLE",
                     sourceLocation: sourceLocation)
    }

    /// Starts `envnet arguments`, standard output and error to `log` (appended).
    static func start(_ arguments: [String], environment: [String: String] = [:], log: URL) throws -> Process {
        let process = Process()
        process.executableURL = try requireExecutable()
        process.arguments = arguments
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        process.environment = merged
        if !FileManager.default.fileExists(atPath: log.path) { _ = FileManager.default.createFile(atPath: log.path, contents: nil) }
        let handle = try FileHandle(forWritingTo: log)
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try handle.close()  // the child has its own copy
        return process
    }

    /// Waits for the process to end, killing it after `timeout` seconds; true when it ended by itself.
    @discardableResult
    static func wait(_ process: Process, timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                return false
            }
            usleep(5_000)
        }
        process.waitUntilExit()
        return true
    }

    /// Runs `envnet arguments` to completion and expects exit status 0.
    static func run(_ arguments: [String], environment: [String: String] = [:], log: URL, timeout: Double,
                     sourceLocation: SourceLocation = #_sourceLocation) throws {
        let process = try start(arguments, environment: environment, log: log)
        let ended = wait(process, timeout: timeout)
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(ended, "envnet \(arguments.joined(separator: " ")) took over \(timeout) s:\n\(output.suffix(2000))",
                sourceLocation: sourceLocation)
        try #require(process.terminationReason == .exit && process.terminationStatus == 0,
                     "envnet \(arguments.joined(separator: " ")) failed (\(process.terminationStatus)):\n\(output.suffix(2000))",
                     sourceLocation: sourceLocation)
    }

    /// Runs `envnet arguments` under `ulimit -f blocks` (through `/bin/sh`), optionally with SIGXFSZ
    /// ignored by the shell, and returns how it ended with its standard output and error.
    static func runUnderFileSizeLimit(blocks: Int, ignoringSignal: Bool, _ arguments: [String],
                                      environment: [String: String] = [:]) throws -> (reason: Process.TerminationReason, status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", (ignoringSignal ? "trap '' XFSZ; " : "") + "ulimit -f \(blocks); exec \"$0\" \"$@\"", try requireExecutable().path] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationReason, process.terminationStatus, output)
    }

    /// What `runMeasuringPeakMemory` reports.
    struct Measurement {
        var exitStatus: Int32?
        var peakResidentBytes: Int
        var seconds: Double
    }

    /// Runs `envnet arguments` with standard output and error to `output`, and reports its own peak
    /// resident memory (from `wait4`, so other children of the test process do not count).
    /// Kills it after `timeout` seconds; the exit status is nil when it did not exit normally.
    static func runMeasuringPeakMemory(_ arguments: [String], output: URL, timeout: Double) throws -> Measurement {
        let executable = try requireExecutable().path
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, output.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let started = Date()
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        try #require(spawned == 0, "posix_spawn \(executable) failed: \(String(cString: strerror(spawned)))")
        var status: Int32 = 0
        var usage = rusage()
        while true {
            let result = wait4(pid, &status, WNOHANG, &usage)
            if result == pid { break }
            if result < 0 && errno != EINTR { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            if Date().timeIntervalSince(started) > timeout { kill(pid, SIGKILL) }
            usleep(20_000)
        }
        #if os(Linux)
        let peak = usage.ru_maxrss * 1024  // kilobytes on Linux
        #else
        let peak = usage.ru_maxrss
        #endif
        let exited = status & 0x7f == 0
        return Measurement(exitStatus: exited ? (status >> 8) & 0xff : nil, peakResidentBytes: peak,
                           seconds: Date().timeIntervalSince(started))
    }

    /// A new empty temporary folder.
    static func temporaryFolder(_ name: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("envnet-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
