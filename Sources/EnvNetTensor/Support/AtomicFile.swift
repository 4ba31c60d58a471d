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
        let temporary = (folder as NSString).appendingPathComponent(".\(name).partial-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
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
                while written < bytes.count {
                    let result = Glibc.write(descriptor, bytes.baseAddress! + written, bytes.count - written)
                    if result < 0 {
                        if errno == EINTR { continue }
                        throw failure("write failed after \(written) of \(bytes.count) bytes")
                    }
                    written += result
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
