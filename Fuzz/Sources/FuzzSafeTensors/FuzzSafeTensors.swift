import EnvNetModel
import Foundation

/// Set ENVNET_FUZZ_VERBOSE=1 to print each input's outcome (for checking the seed corpus).
let verbose = ProcessInfo.processInfo.environment["ENVNET_FUZZ_VERBOSE"] != nil

/// libFuzzer entry point: any bytes must decode or throw `SafeTensorsError`; a decoded file must
/// load as an EnvNet or throw `EnvNetError`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(UnsafeBufferPointer(start: data, count: size))
    let file: SafeTensors
    do {
        file = try SafeTensors.decode(bytes, source: "fuzz.safetensors")
    } catch {
        if verbose { print("rejected: \(error)") }
        return 0
    }
    // Nothing decoded may be larger than the input.
    precondition(file.tensors.values.reduce(0) { $0 + $1.count } * 2 <= size)
    do {
        // Either network: EnvNet or EnvNet-v2, recognised from the metadata or the names.
        let (network, description) = try ModelFile.load(file, source: "fuzz.safetensors")
        precondition(description.classNames.count == network.classCount)
        if verbose { print("loaded: \(network.networkConfiguration), classes \(description.classNames)") }
    } catch {
        if verbose { print("decoded \(file.tensors.count) tensors; not a network this library builds: \(error)") }
    }
    return 0
}
