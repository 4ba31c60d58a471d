import EnvNetLayers
import Foundation

/// Why a safetensors file could not be read or written. Every case names the file and, where
/// one is involved, the tensor.
public enum SafeTensorsError: Error, CustomStringConvertible, Sendable, Equatable {
    case unreadable(path: String, reason: String)
    case truncated(path: String, reason: String)
    case invalidHeader(path: String, reason: String)
    case invalidTensor(path: String, name: String, reason: String)
    case unsupportedDataType(path: String, name: String, dataType: String)
    case overlappingTensors(path: String, first: String, second: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): cannot read: \(reason)"
        case let .truncated(path, reason): return "\(path): truncated safetensors file: \(reason)"
        case let .invalidHeader(path, reason): return "\(path): invalid safetensors header: \(reason)"
        case let .invalidTensor(path, name, reason): return "\(path): tensor '\(name)': \(reason)"
        case let .unsupportedDataType(path, name, dataType):
            return "\(path): tensor '\(name)' has data type \(dataType); only F32 (and F64, F16, BF16, I64, I32, converted to F32) are supported"
        case let .overlappingTensors(path, first, second): return "\(path): tensors '\(first)' and '\(second)' overlap in the data section"
        }
    }
}

/// A set of named Float32 tensors with string metadata, in the safetensors format
/// (an 8-byte little-endian header length, a JSON header, then the raw little-endian data).
///
/// Files from outside are untrusted: sizes, offsets, shapes and data types are all checked
/// before any tensor is built, and nothing larger than the file is ever allocated.
public struct SafeTensors: Sendable {
    /// The tensors by name.
    public var tensors: [String: Tensor]
    /// The `__metadata__` entries of the header.
    public var metadata: [String: String]

    /// A set of tensors and metadata.
    public init(tensors: [String: Tensor] = [:], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// Headers above this size are refused: an EnvNet file's header is about 5 kB, and real
    /// headers of large models are a few hundred kB. It bounds the JSON parse (a 60 MB header of
    /// 800,000 empty tensors took 21 s and 3.4 GB before).
    public static let maximumHeaderBytes = 4 << 20
    /// Files with more tensors than this are refused (EnvNet has 22, PyTorch state dicts of it 26).
    public static let maximumTensorCount = 4096

    /// Reads a safetensors file.
    /// - Throws: ``SafeTensorsError`` naming the file and the problem.
    public static func read(from url: URL) throws -> SafeTensors {
        let data: Data
        do {
            // A folder, a FIFO, /dev/zero or a symbolic link loop is named as such, never read.
            data = try RegularFile.read(url.path)
        } catch let error as RegularFileError {
            throw SafeTensorsError.unreadable(path: url.path, reason: error.reason)
        }
        return try decode(data, source: url.path)
    }

    /// Decodes safetensors bytes; `source` names them in errors.
    public static func decode(_ data: Data, source: String = "<data>") throws -> SafeTensors {
        guard data.count >= 8 else {
            throw SafeTensorsError.truncated(path: source, reason: "\(data.count) bytes, fewer than the 8-byte header length")
        }
        let headerLength = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self)) }
        guard headerLength <= UInt64(maximumHeaderBytes) else {
            throw SafeTensorsError.invalidHeader(path: source, reason: "declared header length \(headerLength) exceeds the \(maximumHeaderBytes)-byte limit")
        }
        guard headerLength <= UInt64(data.count - 8) else {
            throw SafeTensorsError.truncated(path: source, reason: "header of \(headerLength) bytes declared, only \(data.count - 8) follow")
        }
        let headerEnd = 8 + Int(headerLength)
        let headerBytes = data.subdata(in: data.startIndex + 8 ..< data.startIndex + headerEnd)
        // A real header nests three levels deep; deep nesting would only exercise the JSON
        // parser's recursion, so it is refused before parsing.
        guard jsonNestingDepth(headerBytes) <= maximumHeaderNesting else {
            throw SafeTensorsError.invalidHeader(path: source, reason: "JSON nested deeper than \(maximumHeaderNesting) levels")
        }
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: headerBytes, options: [])
        } catch {
            throw SafeTensorsError.invalidHeader(path: source, reason: "not valid JSON")
        }
        guard let header = parsed as? [String: Any] else {
            throw SafeTensorsError.invalidHeader(path: source, reason: "the header is not a JSON object")
        }
        let bufferLength = data.count - headerEnd
        var metadata: [String: String] = [:]
        var entries: [(name: String, dataType: String, shape: [Int], begin: Int, end: Int)] = []
        guard header.count <= maximumTensorCount + 1 else {
            throw SafeTensorsError.invalidHeader(path: source, reason: "\(header.count) header entries, more than the \(maximumTensorCount) tensors allowed")
        }
        for (name, value) in header {
            if name == "__metadata__" {
                guard let dictionary = value as? [String: Any] else {
                    throw SafeTensorsError.invalidHeader(path: source, reason: "__metadata__ is not an object")
                }
                for (key, entry) in dictionary {
                    guard let text = entry as? String else {
                        throw SafeTensorsError.invalidHeader(path: source, reason: "__metadata__ entry '\(key)' is not a string")
                    }
                    metadata[key] = text
                }
                continue
            }
            guard let info = value as? [String: Any] else {
                throw SafeTensorsError.invalidTensor(path: source, name: name, reason: "header entry is not an object")
            }
            guard let dataType = info["dtype"] as? String else {
                throw SafeTensorsError.invalidTensor(path: source, name: name, reason: "missing dtype")
            }
            guard let shapeValues = info["shape"] as? [Any], let shape = integers(shapeValues), shape.allSatisfy({ $0 >= 0 }) else {
                throw SafeTensorsError.invalidTensor(path: source, name: name, reason: "shape is not a list of non-negative integers")
            }
            guard let offsetValues = info["data_offsets"] as? [Any], let offsets = integers(offsetValues), offsets.count == 2 else {
                throw SafeTensorsError.invalidTensor(path: source, name: name, reason: "data_offsets is not a pair of integers")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end, end <= bufferLength else {
                throw SafeTensorsError.invalidTensor(
                    path: source, name: name, reason: "data_offsets [\(begin), \(end)] lie outside the \(bufferLength)-byte data section")
            }
            entries.append((name, dataType, shape, begin, end))
        }
        // Overlaps: the tensors that hold bytes, sorted by start, must each begin at or after the
        // furthest end so far. Empty tensors hold no bytes and are left out of the walk, so one
        // sorted between two overlapping tensors cannot hide their overlap.
        let sorted = entries.filter { $0.end > $0.begin }.sorted { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var furthest: (name: String, end: Int)?
        for entry in sorted {
            if let previous = furthest, entry.begin < previous.end {
                throw SafeTensorsError.overlappingTensors(path: source, first: previous.name, second: entry.name)
            }
            if furthest == nil || entry.end > furthest!.end { furthest = (entry.name, entry.end) }
        }
        var tensors: [String: Tensor] = [:]
        for entry in entries {
            let elementSize: Int
            switch entry.dataType {
            case "F32", "I32": elementSize = 4
            case "F64", "I64": elementSize = 8
            case "F16", "BF16": elementSize = 2
            default: throw SafeTensorsError.unsupportedDataType(path: source, name: entry.name, dataType: entry.dataType)
            }
            // The element count is checked against the bytes present before anything is allocated.
            // The product of the non-zero extents is bounded too: a zero extent makes the count 0,
            // but the tensor's strides multiply the other extents ([0, 2^40, 2^40] would overflow).
            var count = 1, nonZeroProduct = 1
            for extent in entry.shape {
                let (product, overflow) = nonZeroProduct.multipliedReportingOverflow(by: Swift.max(extent, 1))
                guard !overflow, product <= bufferLength else {
                    throw SafeTensorsError.invalidTensor(path: source, name: entry.name, reason: "shape \(entry.shape) is larger than the file")
                }
                nonZeroProduct = product
                count *= extent
            }
            guard count * elementSize == entry.end - entry.begin else {
                throw SafeTensorsError.invalidTensor(
                    path: source, name: entry.name,
                    reason: "shape \(entry.shape) of \(entry.dataType) needs \(count * elementSize) bytes, data_offsets give \(entry.end - entry.begin)")
            }
            // Decoded straight into the tensor's storage: no intermediate array, no second copy.
            let storage = TensorStorage(capacity: count)
            let values = storage.baseAddress
            data.withUnsafeBytes { raw in
                let start = headerEnd + entry.begin
                for index in 0..<count {
                    let at = start + index * elementSize
                    switch entry.dataType {
                    case "F32": values[index] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
                    case "F64": values[index] = Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt64.self))))
                    case "I32": values[index] = Float(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: Int32.self)))
                    case "I64": values[index] = Float(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: Int64.self)))
                    case "F16": values[index] = halfToFloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt16.self)))
                    default: values[index] = Float(bitPattern: UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt16.self))) << 16)
                    }
                }
            }
            tensors[entry.name] = Tensor(storage: storage, shape: entry.shape, strides: Shape.contiguousStrides(entry.shape))
        }
        return SafeTensors(tensors: tensors, metadata: metadata)
    }

    /// How tensor values are stored in a written file.
    public enum StorageType: String, Sendable, CaseIterable {
        /// IEEE single precision (`F32`), exact.
        case float32 = "f32"
        /// IEEE half precision (`F16`): half the size, about 3 significant digits. A tensor with a
        /// value beyond half precision's range (65504) or a non-finite value stays `F32`.
        case float16 = "f16"
    }

    /// The file's bytes: tensors in name order, little-endian, header padded to 8 bytes.
    /// - Parameter storage: F32 (the default) or F16 for every tensor that fits.
    public func encoded(storage: StorageType = .float32) -> Data {
        let names = tensors.keys.sorted()
        var header: [String: Any] = [:]
        var offset = 0
        var halves: Set<String> = []
        for name in names {
            let tensor = tensors[name]!
            var elementSize = 4
            if storage == .float16, tensor.withUnsafeBufferPointer({ $0.allSatisfy { $0.isFinite && Swift.abs($0) <= 65504 } }) {
                halves.insert(name)
                elementSize = 2
            }
            header[name] = ["dtype": elementSize == 2 ? "F16" : "F32", "shape": tensor.shape,
                            "data_offsets": [offset, offset + tensor.count * elementSize]] as [String: Any]
            offset += tensor.count * elementSize
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = (try? JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])) ?? Data("{}".utf8)
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var data = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(json)
        for name in names {
            tensors[name]!.withUnsafeBufferPointer { values in
                if halves.contains(name) {
                    var littleEndian = values.map { Self.floatToHalf($0).littleEndian }
                    littleEndian.withUnsafeMutableBytes { data.append(contentsOf: $0) }
                } else {
                    var littleEndian = values.map { $0.bitPattern.littleEndian }
                    littleEndian.withUnsafeMutableBytes { data.append(contentsOf: $0) }
                }
            }
        }
        return data
    }

    /// Writes the file atomically (a temporary file, then a rename).
    /// - Parameter storage: F32 (the default) or F16.
    /// - Throws: `FileWriteError` when the file cannot be written.
    public func write(to url: URL, storage: StorageType = .float32) throws {
        try AtomicFile.write(encoded(storage: storage), to: url)
    }

    /// Rounds to the nearest half-precision value (ties to even); the caller keeps values within range.
    static func floatToHalf(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        let exponent = Int((bits >> 23) & 0xFF) - 127 + 15
        var mantissa = bits & 0x7F_FFFF
        if exponent >= 31 { return sign | 0x7C00 }
        if exponent <= 0 {
            // Subnormal half (or zero): shift the implicit bit in, round to nearest even.
            guard exponent >= -10 else { return sign }
            mantissa |= 0x80_0000
            let shift = UInt32(14 - exponent)
            let half = mantissa >> shift
            let remainder = mantissa & ((1 << shift) - 1), halfway = UInt32(1) << (shift - 1)
            let rounded = half + ((remainder > halfway || (remainder == halfway && half & 1 == 1)) ? 1 : 0)
            return sign | UInt16(rounded)
        }
        var result = UInt32(exponent) << 10 | (mantissa >> 13)
        let remainder = mantissa & 0x1FFF
        if remainder > 0x1000 || (remainder == 0x1000 && result & 1 == 1) { result += 1 }  // may carry into the exponent: correct
        return sign | UInt16(result)
    }

    /// Headers nested deeper than this are refused before JSON parsing.
    public static let maximumHeaderNesting = 16

    /// The deepest nesting of `[` and `{` outside JSON strings (the bytes need not be valid JSON).
    static func jsonNestingDepth(_ bytes: Data) -> Int {
        var depth = 0, deepest = 0, inString = false, escaped = false
        for byte in bytes {
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                deepest = Swift.max(deepest, depth)
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        return deepest
    }

    private static func integers(_ values: [Any]) -> [Int]? {
        var result: [Int] = []
        for value in values {
            guard let number = value as? NSNumber else { return nil }
            let double = number.doubleValue
            guard double == double.rounded(), Swift.abs(double) < 9.0e15 else { return nil }
            result.append(Int(double))
        }
        return result
    }

    private static func halfToFloat(_ bits: UInt16) -> Float {
        let sign = UInt32(bits >> 15) << 31
        let exponent = Int((bits >> 10) & 0x1F)
        let mantissa = UInt32(bits & 0x3FF)
        if exponent == 0 {
            let value = Float(mantissa) * 0x1p-24
            return sign != 0 ? -value : value
        }
        if exponent == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
    }
}
