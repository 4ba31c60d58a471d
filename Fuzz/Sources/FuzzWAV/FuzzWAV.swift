import EnvNetAudio
import Foundation

/// Set ENVNET_FUZZ_VERBOSE=1 to print each input's outcome (for checking the seed corpus).
let verbose = ProcessInfo.processInfo.environment["ENVNET_FUZZ_VERBOSE"] != nil

/// libFuzzer entry point: any bytes must either decode into consistent audio or throw
/// `AudioError`; a trap, a sanitizer report, a hang or an allocation beyond the input is a bug.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do {
        let audio = try WAVReader.decode(bytes: bytes, source: "fuzz.wav")
        // What decoded must be consistent and no larger than the input.
        precondition(audio.channels.count == audio.channelCount)
        precondition(audio.channels.allSatisfy { $0.count == audio.frameCount })
        precondition(audio.mono.count == audio.frameCount)
        precondition(audio.frameCount * audio.channelCount * audio.encoding.bytesPerSample <= size)
        precondition(audio.mono.allSatisfy(\.isFinite))
        let info = try WAVReader.info(of: Data(bytes), source: "fuzz.wav")
        precondition(info == audio.info)
        if verbose { print("decoded: \(audio.info.encodingDescription), \(audio.channelCount) ch, \(audio.frameCount) frames") }
    } catch {
        if verbose { print("rejected: \(error)") }
    }
    return 0
}
