import EnvNetModel
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Progress on the terminal: a redrawn bar with an ETA on standard error when it is a terminal,
/// plain occasional lines otherwise (logs, CI).
final class ProgressReporter: @unchecked Sendable {
    private let interactive = isatty(STDERR_FILENO) != 0
    /// Set on the ranks of a data-parallel job but rank 0: one rank speaks for the job.
    nonisolated(unsafe) static var isSilenced = false
    private let lock = NSLock()
    private var started = DispatchTime.now().uptimeNanoseconds
    private var lastPlain: UInt64 = 0
    private var label = ""

    /// Starts timing a new phase.
    func begin(_ label: String) {
        lock.lock()
        defer { lock.unlock() }
        self.label = label
        started = DispatchTime.now().uptimeNanoseconds
        lastPlain = 0
    }

    /// Shows `done` of `total` with an optional detail, e.g. the current loss.
    func update(done: Int, total: Int, detail: String = "") {
        guard !Self.isSilenced else { return }
        lock.lock()
        defer { lock.unlock() }
        let now = DispatchTime.now().uptimeNanoseconds
        let elapsed = Double(now - started) / 1e9
        let fraction = total > 0 ? Double(done) / Double(total) : 1
        let eta = fraction > 0 ? elapsed / fraction - elapsed : 0
        if interactive {
            let width = 28
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            let line = "\r\(label) [\(bar)] \(done)/\(total) \(detail) ETA \(Self.clock(eta))   "
            FileHandle.standardError.write(Data(line.utf8))
            if done >= total { FileHandle.standardError.write(Data("\r\(String(repeating: " ", count: line.count))\r".utf8)) }
        } else if now - lastPlain > 10_000_000_000 || done >= total {
            // Without a terminal, a line every 10 s at most.
            lastPlain = now
            FileHandle.standardError.write(Data("\(label) \(done)/\(total) \(detail) elapsed \(Self.clock(elapsed)) ETA \(Self.clock(eta))\n".utf8))
        }
    }

    static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "--:--" }
        let total = Int(seconds.rounded())
        return total >= 3600 ? String(format: "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60)
                             : String(format: "%02d:%02d", total / 60, total % 60)
    }
}

/// Prints to standard error.
func printError(_ message: String) {
    guard !ProgressReporter.isSilenced else { return }
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
