/// Text from files (class names in a model's metadata, folder names of a dataset) made safe to
/// print: control characters (C0, DEL, C1) and bidirectional overrides are written as `\u{…}`
/// escapes, so a crafted name cannot fake output lines, move the cursor or send terminal escapes.
///
/// - Parameter text: Text from an untrusted source.
/// - Returns: The text, with those characters escaped and everything else unchanged.
public func terminalSafe(_ text: String) -> String {
    var result = ""
    result.reserveCapacity(text.utf8.count)
    for scalar in text.unicodeScalars {
        let value = scalar.value
        let isControl = value < 0x20 || (0x7F...0x9F).contains(value)
        let isBidiOverride = (0x202A...0x202E).contains(value) || (0x2066...0x2069).contains(value)
        if isControl || isBidiOverride {
            result += "\\u{" + String(value, radix: 16, uppercase: true) + "}"
        } else {
            result.unicodeScalars.append(scalar)
        }
    }
    return result
}
