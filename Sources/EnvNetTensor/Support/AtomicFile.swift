import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a file could not be written.
public struct FileWriteError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file that was being written.
    public let path: String
    /// What failed, with the system's reason.
    public let reason: String

    public var description: String { "cannot write \(path): \(reason)" }
}

/// Writes files so that a crash never leaves a half-written one behind.
///
/// The bytes go to a temporary file in the destination's folder, are flushed to disk, and the
/// temporary file is then renamed over the destination (an atomic step on POSIX file systems):
/// a reader sees either the old file or the complete new one.
public enum AtomicFile {
    /// Writes `data` to `url` atomically.
    /// - Throws: ``FileWriteError`` naming the file and the system's reason (missing folder, no permission, disk full …).
    public static func write(_ data: Data, to url: URL) throws {
        let destination = url.standardizedFileURL.path
        let folder = (destination as NSString).deletingLastPathComponent
        let name = (destination as NSString).lastPathComponent
        let temporary = (folder as NSString).appendingPathComponent("\(temporaryFilePrefix(for: url))\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        func failure(_ what: String) -> FileWriteError {
            FileWriteError(path: destination, reason: "\(what): \(String(cString: strerror(errno)))")
        }
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw failure("cannot create a temporary file in \(folder)") }
        var closed = false
        defer {
            if !closed { close(descriptor) }
        }
        do {
            try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
                var written = 0
                // The kill test's pause (see `testPause`): after the first half of the bytes.
                let pauses = testPause.microseconds > 0 && (testPause.name == nil || testPause.name == name)
                var pauseAt = pauses && bytes.count >= 2 ? bytes.count / 2 : Int.max
                while written < bytes.count {
                    let result = Glibc.write(descriptor, bytes.baseAddress! + written, Swift.min(bytes.count, pauseAt) - written)
                    if result < 0 {
                        if errno == EINTR { continue }
                        throw failure("write failed after \(written) of \(bytes.count) bytes")
                    }
                    written += result
                    if written >= pauseAt {
                        pauseAt = Int.max
                        usleep(testPause.microseconds)
                    }
                }
            }
            guard fsync(descriptor) == 0 else { throw failure("fsync failed") }
            closed = true
            guard close(descriptor) == 0 else { throw failure("close failed") }
            guard rename(temporary, destination) == 0 else { throw failure("rename failed") }
        } catch {
            unlink(temporary)
            throw error
        }
        // Make the rename itself durable.
        let folderDescriptor = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if folderDescriptor >= 0 {
            fsync(folderDescriptor)
            close(folderDescriptor)
        }
    }

    /// A pause in the middle of every atomic write, for the kill test only
    /// (`Tests/EnvNetCommandLineTests/KillTests.swift`): writes pause `microseconds` after writing
    /// the first half of their temporary file, so that the test can SIGKILL a process in the middle
    /// of a checkpoint write; with a `name`, only writes to files of that name pause. The `envnet`
    /// command sets it at start from `ENVNET_TEST_WRITE_PAUSE_MS` and `ENVNET_TEST_WRITE_PAUSE_NAME`
    /// (Docs/environment.md); it is off everywhere else, and never changes what is written or where.
    package struct TestPause: Sendable {
        package var microseconds: UInt32
        package var name: String?

        package init(microseconds: UInt32, name: String?) {
            self.microseconds = microseconds
            self.name = name
        }
    }

    /// The pause in effect (none unless the `envnet` command set one).
    package static var testPause: TestPause {
        get { storedTestPause.value }
        set { storedTestPause.value = newValue }
    }
    private static let storedTestPause = LockedValue(TestPause(microseconds: 0, name: nil))

    /// The prefix of the temporary files of writes to `url` (`.<name>.partial-`).
    public static func temporaryFilePrefix(for url: URL) -> String {
        ".\(url.standardizedFileURL.lastPathComponent).partial-"
    }

    /// Removes the temporary files that writes to `url` by processes no longer running left behind
    /// (a process killed between creating its temporary file and renaming it leaves one). Files of
    /// running processes, including this one, are left alone.
    /// - Returns: the names of the files removed.
    @discardableResult
    public static func removeStaleTemporaryFiles(for url: URL) -> [String] {
        let folder = url.standardizedFileURL.deletingLastPathComponent()
        let prefix = temporaryFilePrefix(for: url)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return [] }
        var removed: [String] = []
        for name in names where name.hasPrefix(prefix) {
            // `.<name>.partial-<pid>-<random>`
            let rest = name.dropFirst(prefix.count)
            guard let dash = rest.firstIndex(of: "-"), let pid = pid_t(rest[..<dash]), pid > 0 else { continue }
            guard pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            if unlink(folder.appendingPathComponent(name).path) == 0 { removed.append(name) }
        }
        return removed
    }

    /// Writes `text` as UTF-8 to `url` atomically.
    public static func write(_ text: String, to url: URL) throws {
        try write(Data(text.utf8), to: url)
    }

    /// Checks that files can be created in `folder` (creating the folder if needed), by writing and
    /// removing a small probe file. Call it before long work whose results go there.
    /// - Throws: ``FileWriteError`` when the folder cannot be created or written.
    public static func checkWritableFolder(_ folder: URL) throws {
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw FileWriteError(path: folder.path, reason: "cannot create the folder: \(error.localizedDescription)")
        }
        let probe = folder.appendingPathComponent(".write-check-\(getpid())")
        try write(Data(count: 4096), to: probe)
        unlink(probe.path)
    }
}
