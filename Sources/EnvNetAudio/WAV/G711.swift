import EnvNetTensor
/// ITU-T G.711 expansion tables to linear 16-bit values.
///
/// Both laws expand to at most 14 significant bits; the values here are scaled to the 16-bit
/// range as in the reference decoders, so dividing by 32768 gives the usual `[-1, 1]` range.
enum G711 {
    /// Linear value of every A-law code.
    static let aLawTable: [Int16] = (0..<256).map { expandALaw(UInt8($0)) }
    /// Linear value of every mu-law code.
    static let muLawTable: [Int16] = (0..<256).map { expandMuLaw(UInt8($0)) }

    static func expandALaw(_ code: UInt8) -> Int16 {
        // A-law transmits every other bit inverted (XOR 0x55) to keep the line busy.
        let value = code ^ 0x55
        let exponent = Int((value >> 4) & 0x07)
        let mantissa = Int(value & 0x0F)
        var magnitude = (mantissa << 4) + 8
        if exponent > 0 { magnitude = (magnitude + 0x100) << (exponent - 1) }
        // In A-law a set sign bit means positive.
        return Int16(value & 0x80 != 0 ? magnitude : -magnitude)
    }

    static func expandMuLaw(_ code: UInt8) -> Int16 {
        // mu-law codes are stored complemented.
        let value = ~code
        let exponent = Int((value >> 4) & 0x07)
        let mantissa = Int(value & 0x0F)
        let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
        return Int16(value & 0x80 != 0 ? -magnitude : magnitude)
    }
}
