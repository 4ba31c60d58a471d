import EnvNetTensor
import Foundation

/// An error in CSV text, naming the file and the 1-based line where it was found.
public struct CSVError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file (or label) being parsed.
    public var source: String
    /// The 1-based line number where the problem starts.
    public var line: Int
    /// What is wrong.
    public var message: String

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - source: The file path or label.
    ///   - line: The 1-based line number.
    ///   - message: What is wrong.
    public init(source: String, line: Int, message: String) {
        self.source = source
        self.line = line
        self.message = message
    }

    /// `"path:line: message"`.
    public var description: String { "\(source):\(line): \(message)" }
}

/// A minimal RFC 4180 CSV parser.
///
/// Handles quoted fields containing commas, line breaks and doubled quotes (`""`), LF, CRLF
/// and lone CR line ends, a UTF-8 byte-order mark, and a missing final line end. A quote
/// inside an unquoted field is kept literally (as spreadsheets write it); text after a closing
/// quote, or a quoted field that never closes, is an error. Blank lines are skipped.
public enum CSV {
    /// Parses CSV text into rows of fields.
    ///
    /// - Parameters:
    ///   - text: The CSV text.
    ///   - source: A label used in error messages.
    /// - Returns: The rows, each an array of fields, in order.
    /// - Throws: `CSVError` for an unterminated quoted field or text after a closing quote.
    public static func parse(_ text: String, source: String = "<memory>") throws -> [[String]] {
        try parseNumbered(text, source: source).map(\.fields)
    }

    /// Parses CSV text into rows, each with the 1-based line number it starts on.
    static func parseNumbered(
        _ text: String, source: String
    ) throws -> [(line: Int, fields: [String])] {
        var bytes = Array(text.utf8)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        var rows: [(line: Int, fields: [String])] = []
        var row: [String] = []
        var rowStartLine = 1
        var field: [UInt8] = []
        var line = 1
        var index = 0
        var rowHasContent = false
        let quote = UInt8(ascii: "\""), comma = UInt8(ascii: ","),
            newline = UInt8(ascii: "\n"), carriageReturn = UInt8(ascii: "\r")

        func endField() {
            row.append(String(decoding: field, as: UTF8.self))
            field.removeAll(keepingCapacity: true)
        }
        func endRow() {
            endField()
            if rowHasContent || row.count > 1 || !(row.first?.isEmpty ?? true) {
                rows.append((rowStartLine, row))
            }
            row.removeAll(keepingCapacity: true)
            rowHasContent = false
        }

        while index < bytes.count {
            let byte = bytes[index]
            if byte == quote && field.isEmpty {
                // Quoted field: read to the closing quote, unescaping doubled quotes.
                let startLine = line
                index += 1
                var closed = false
                while index < bytes.count {
                    let inner = bytes[index]
                    if inner == quote {
                        if index + 1 < bytes.count && bytes[index + 1] == quote {
                            field.append(quote)
                            index += 2
                            continue
                        }
                        index += 1
                        closed = true
                        break
                    }
                    if inner == newline { line += 1 }
                    if inner == carriageReturn && !(index + 1 < bytes.count && bytes[index + 1] == newline) {
                        line += 1
                    }
                    field.append(inner)
                    index += 1
                }
                guard closed else {
                    throw CSVError(source: source, line: startLine, message: "unterminated quoted field")
                }
                rowHasContent = true
                if index < bytes.count {
                    let next = bytes[index]
                    guard next == comma || next == newline || next == carriageReturn else {
                        throw CSVError(source: source, line: line,
                                       message: "unexpected character after closing quote")
                    }
                }
                continue
            }
            switch byte {
            case comma:
                endField()
                rowHasContent = true
                index += 1
            case newline:
                endRow()
                line += 1
                rowStartLine = line
                index += 1
            case carriageReturn:
                endRow()
                line += 1
                rowStartLine = line
                index += 1
                if index < bytes.count && bytes[index] == newline { index += 1 }
            default:
                field.append(byte)
                index += 1
            }
        }
        if !field.isEmpty || !row.isEmpty || rowHasContent { endRow() }
        return rows
    }

    /// Parses CSV text whose first row is a header into records keyed by column name.
    ///
    /// - Parameters:
    ///   - text: The CSV text.
    ///   - source: A label used in error messages.
    /// - Returns: The header and the records with their 1-based line numbers.
    /// - Throws: `CSVError` for syntax errors, an empty table, duplicate column names or a row
    ///   whose field count differs from the header's.
    public static func parseTable(_ text: String, source: String = "<memory>") throws -> CSVTable {
        let rows = try parseNumbered(text, source: source)
        guard let header = rows.first?.fields else {
            throw CSVError(source: source, line: 1, message: "no header row")
        }
        guard Set(header).count == header.count else {
            throw CSVError(source: source, line: 1, message: "duplicate column names in header")
        }
        for row in rows.dropFirst() where row.fields.count != header.count {
            throw CSVError(source: source, line: row.line,
                           message: "\(row.fields.count) fields, header has \(header.count)")
        }
        return CSVTable(
            header: header, rows: rows.dropFirst().map(\.fields),
            lineNumbers: rows.dropFirst().map(\.line))
    }

}

/// A CSV table with a header row.
public struct CSVTable: Sendable, Equatable {
    /// Column names, in order.
    public var header: [String]
    /// Data rows (header excluded), each with `header.count` fields.
    public var rows: [[String]]
    /// The 1-based line on which each row starts, parallel to `rows`.
    public var lineNumbers: [Int]

    /// The index of a column.
    ///
    /// - Parameter name: The column name.
    /// - Returns: Its index, or `nil` when absent.
    public func columnIndex(_ name: String) -> Int? {
        header.firstIndex(of: name)
    }
}
