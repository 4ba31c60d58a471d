import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Opening input files so that a FIFO, a device or a folder is refused, not read: `open` with
/// `O_NONBLOCK` cannot block on a FIFO, and `fstat` on the open descriptor says what the path
/// really is (no race between a check and the open).
public enum RegularFile {
    /// Opens `path` for reading if it is a regular file (symbolic links followed).
    ///
    /// - Parameter path: The path.
    /// - Returns: A descriptor (blocking mode) that the caller closes.
    /// - Throws: ``RegularFileError`` saying what the path is instead, or why it cannot be opened.
    public static func open(_ path: String) throws -> Int32 {
        let descriptor = Glibc_open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { throw RegularFileError(path: path, reason: reason(errno: errno, path: path)) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw RegularFileError(path: path, reason: reason)
        }
        let type = status.st_mode & S_IFMT
        guard type == S_IFREG else {
            close(descriptor)
            throw RegularFileError(path: path, reason: "is \(kind(of: type)), not a regular file", kind: kind(of: type))
        }
        // Regular files ignore O_NONBLOCK; clear it so that libraries see an ordinary descriptor.
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) & ~O_NONBLOCK)
        return descriptor
    }

    /// Reads a whole regular file, memory-mapped.
    ///
    /// - Parameter path: The path.
    /// - Returns: Its bytes.
    /// - Throws: ``RegularFileError``.
    public static func read(_ path: String) throws -> Data {
        let descriptor = try open(path)
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw RegularFileError(path: path, reason: String(cString: strerror(errno))) }
        let size = Int(status.st_size)
        if size == 0 { return Data() }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0), mapped != MAP_FAILED else {
            throw RegularFileError(path: path, reason: String(cString: strerror(errno)))
        }
        return Data(bytesNoCopy: mapped, count: size, deallocator: .custom { pointer, count in munmap(pointer, count) })
    }

    /// What a file type is, in words ("a FIFO", "a folder" …).
    public static func kind(of type: mode_t) -> String {
        switch type {
        case S_IFIFO: return "a FIFO"
        case S_IFDIR: return "a folder"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        default: return "not a plain file"
        }
    }

    /// Why `open` failed, in words that say what the path is.
    public static func reason(errno code: Int32, path: String) -> String {
        switch code {
        case ENOENT:
            // Command-line arguments that are not UTF-8 reach Swift with U+FFFD in place of the
            // bad bytes, so such a name can never be found: say why.
            return path.contains("\u{FFFD}") ? "the name is not valid UTF-8, so no file of that name can be opened" : "no such file"
        case ELOOP: return "is a symbolic link loop"
        case EACCES: return "permission denied"
        case ENOTDIR: return "a part of the path is not a folder"
        case ENAMETOOLONG: return "the name is too long"
        default: return String(cString: strerror(code))
        }
    }
}

/// A path that is not a readable regular file.
public struct RegularFileError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The path.
    public var path: String
    /// What it is instead, or why it cannot be opened.
    public var reason: String
    /// What the path is when it exists but is not a regular file ("a FIFO", "a folder" …).
    public var kind: String?

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - path: The path.
    ///   - reason: What it is instead, or why it cannot be opened.
    ///   - kind: What it is when it is not a regular file.
    public init(path: String, reason: String, kind: String? = nil) {
        self.path = path
        self.reason = reason
        self.kind = kind
    }

    public var description: String { "\(path): \(reason)" }
}

/// `open(2)`, named apart from the `open` static method above.
private func Glibc_open(_ path: String, _ flags: Int32) -> Int32 {
    #if canImport(Glibc) || canImport(Musl)
    return Glibc.open(path, flags)
    #else
    return Darwin.open(path, flags)
    #endif
}
