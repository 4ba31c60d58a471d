import CEnvNetSupport

/// Process facts and settings from the C support module, for the layers above.
public enum ProcessSupport {
    /// This process's peak resident memory in bytes (`getrusage`).
    public static var peakResidentBytes: Int { Int(envnet_peak_resident_bytes()) }

    /// Makes standard output line-buffered, so that lines reach a log file as they are printed.
    public static func lineBufferStandardOutput() { envnet_line_buffer_standard_output() }
}
