/// A pull parser for JSON text, written for index.json.
///
/// Why not Foundation: `JSONDecoder` takes ~430 ms and ~100 MB to decode a 100 000-layer index
/// on this project's machines, `JSONSerialization` ~1 s and ~400 MB; the format's goal is
/// ≤ 300 ms, and no faster JSON package is in the mirrored set. The index decoder drives this
/// reader field by field, so nothing is built that is not kept. Errors are `FormatError`s that
/// name the file, the JSON path (`layers[3].offset`) and the byte position.
public struct JSONReader {
    public enum ValueKind: String { case object, array, string, number, bool, null }

    private let bytes: [UInt8]
    private(set) var position = 0
    let file: String
    /// Nesting limit, so that hostile input cannot exhaust the stack.
    private static let maxDepth = 256
    private var depth = 0

    public init(bytes: [UInt8], file: String) {
        self.bytes = bytes
        self.file = file
    }

    // MARK: Errors

    func syntaxError(_ path: @autoclosure () -> String, _ what: String) -> FormatError {
        var line = 1, column = 1
        for b in bytes[0..<min(position, bytes.count)] {
            if b == UInt8(ascii: "\n") { line += 1; column = 1 } else { column += 1 }
        }
        let found = position < bytes.count ? "'\(Character(Unicode.Scalar(bytes[position])))'" : "end of file"
        return FormatError(.malformed, file: file, field: path(),
                           "malformed JSON at line \(line), column \(column): \(what), found \(found)")
    }

    func typeError(_ path: @autoclosure () -> String, expected: String, found: ValueKind) -> FormatError {
        FormatError(.malformed, file: file, field: path(), "expected \(expected), found \(found.rawValue)")
    }

    // MARK: Structure

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x0A, 0x0D, 0x09: position += 1
            default: return
            }
        }
    }

    /// The kind of the next value, without consuming it.
    public mutating func peekKind(_ path: @autoclosure () -> String) throws(FormatError) -> ValueKind {
        skipWhitespace()
        guard position < bytes.count else { throw syntaxError(path(), "expected a value") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool
        case UInt8(ascii: "n"): return .null
        default: throw syntaxError(path(), "expected a value")
        }
    }

    private mutating func consume(_ c: UInt8, _ path: @autoclosure () -> String) throws(FormatError) {
        skipWhitespace()
        guard position < bytes.count, bytes[position] == c else {
            throw syntaxError(path(), "expected '\(Character(Unicode.Scalar(c)))'")
        }
        position += 1
    }

    private mutating func enter(_ path: @autoclosure () -> String) throws(FormatError) {
        depth += 1
        if depth > JSONReader.maxDepth { throw syntaxError(path(), "nesting deeper than \(JSONReader.maxDepth)") }
    }

    /// Reads an object, calling `body` with each key; `body` must consume the value.
    public mutating func readObject(_ path: @autoclosure () -> String, _ body: (inout JSONReader, String) throws(FormatError) -> Void) throws(FormatError) {
        let kind = try peekKind(path())
        guard kind == .object else { throw typeError(path(), expected: "an object", found: kind) }
        try enter(path())
        position += 1
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
            position += 1; depth -= 1; return
        }
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                throw syntaxError(path(), "expected a key string")
            }
            let key = try readStringLiteral(path())
            try consume(UInt8(ascii: ":"), path())
            try body(&self, key)
            skipWhitespace()
            guard position < bytes.count else { throw syntaxError(path(), "expected ',' or '}'") }
            if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
            if bytes[position] == UInt8(ascii: "}") { position += 1; break }
            throw syntaxError(path(), "expected ',' or '}'")
        }
        depth -= 1
    }

    /// Reads an array, calling `body` with each element's index; `body` must consume it.
    public mutating func readArray(_ path: @autoclosure () -> String, _ body: (inout JSONReader, Int) throws(FormatError) -> Void) throws(FormatError) {
        let kind = try peekKind(path())
        guard kind == .array else { throw typeError(path(), expected: "an array", found: kind) }
        try enter(path())
        position += 1
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
            position += 1; depth -= 1; return
        }
        var index = 0
        while true {
            try body(&self, index)
            index += 1
            skipWhitespace()
            guard position < bytes.count else { throw syntaxError(path(), "expected ',' or ']'") }
            if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
            if bytes[position] == UInt8(ascii: "]") { position += 1; break }
            throw syntaxError(path(), "expected ',' or ']'")
        }
        depth -= 1
    }

    /// Checks that only whitespace follows the top-level value.
    public mutating func finish() throws(FormatError) {
        skipWhitespace()
        if position != bytes.count { throw syntaxError("", "expected end of file after the top-level value") }
    }

    // MARK: Scalars

    public mutating func readString(_ path: @autoclosure () -> String) throws(FormatError) -> String {
        let kind = try peekKind(path())
        guard kind == .string else { throw typeError(path(), expected: "a string", found: kind) }
        return try readStringLiteral(path())
    }

    private mutating func readStringLiteral(_ path: @autoclosure () -> String) throws(FormatError) -> String {
        position += 1 // opening quote
        let start = position
        // Fast path: no escapes.
        while position < bytes.count {
            let b = bytes[position]
            if b == UInt8(ascii: "\"") {
                let s = String(decoding: bytes[start..<position], as: UTF8.self)
                position += 1
                return s
            }
            if b == UInt8(ascii: "\\") { break }
            if b < 0x20 { throw syntaxError(path(), "control character in a string") }
            position += 1
        }
        var out = Array(bytes[start..<position])
        while position < bytes.count {
            let b = bytes[position]
            if b == UInt8(ascii: "\"") {
                position += 1
                return String(decoding: out, as: UTF8.self)
            }
            if b < 0x20 { throw syntaxError(path(), "control character in a string") }
            if b != UInt8(ascii: "\\") { out.append(b); position += 1; continue }
            position += 1
            guard position < bytes.count else { break }
            let e = bytes[position]
            position += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try readHex4(path())
                if (0xD800..<0xDC00).contains(scalar) {
                    // A high surrogate must be followed by \u and a low surrogate.
                    guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") else {
                        throw syntaxError(path(), "unpaired surrogate in \\u escape")
                    }
                    position += 2
                    let low = try readHex4(path())
                    guard (0xDC00..<0xE000).contains(low) else { throw syntaxError(path(), "unpaired surrogate in \\u escape") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw syntaxError(path(), "unpaired surrogate in \\u escape")
                }
                guard let u = Unicode.Scalar(scalar) else { throw syntaxError(path(), "invalid \\u escape") }
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default:
                position -= 1
                throw syntaxError(path(), "invalid escape")
            }
        }
        throw syntaxError(path(), "unterminated string")
    }

    private mutating func readHex4(_ path: @autoclosure () -> String) throws(FormatError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw syntaxError(path(), "short \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[position]
            let n: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): n = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): n = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): n = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw syntaxError(path(), "invalid hex digit in \\u escape")
            }
            v = v << 4 | n
            position += 1
        }
        return v
    }

    /// Reads a string that is exactly `sha256:` + 64 lowercase hex digits straight into a
    /// digest, without building a String. Returns nil, consuming nothing, for anything else
    /// (the caller then reads the string to report it).
    public mutating func readChecksum(_ path: @autoclosure () -> String) throws(FormatError) -> Digest256? {
        let kind = try peekKind(path())
        guard kind == .string else { throw typeError(path(), expected: "a string", found: kind) }
        let start = position + 1
        guard start + 72 <= bytes.count, bytes[start + 71] == UInt8(ascii: "\"") else { return nil }
        // No array per call (this runs once per layer: 10 % of loading a 100 000-layer index
        // went to the two small arrays it used to allocate).
        return bytes.withUnsafeBufferPointer { (b) -> Digest256? in
            let p = b.baseAddress! + start
            guard p[0] == UInt8(ascii: "s"), p[1] == UInt8(ascii: "h"), p[2] == UInt8(ascii: "a"), p[3] == UInt8(ascii: "2"),
                  p[4] == UInt8(ascii: "5"), p[5] == UInt8(ascii: "6"), p[6] == UInt8(ascii: ":") else { return nil }
            func word(_ w: Int) -> UInt64? {
                var value: UInt64 = 0
                for i in 0..<16 {
                    let c = p[7 + w * 16 + i]
                    let n: UInt8
                    switch c {
                    case UInt8(ascii: "0")...UInt8(ascii: "9"): n = c &- UInt8(ascii: "0")
                    case UInt8(ascii: "a")...UInt8(ascii: "f"): n = c &- UInt8(ascii: "a") &+ 10
                    default: return nil
                    }
                    value = value << 4 | UInt64(n)
                }
                return value
            }
            guard let w0 = word(0), let w1 = word(1), let w2 = word(2), let w3 = word(3) else { return nil }
            position = start + 72
            return Digest256(w0: w0, w1: w1, w2: w2, w3: w3)
        }
    }

    /// An RFC 3339 timestamp string.
    public mutating func readTimestamp(_ path: @autoclosure () -> String) throws(FormatError) -> Timestamp {
        let text = try readString(path())
        guard let t = Timestamp(rfc3339: text) else {
            throw FormatError(.invalidValue, file: file, field: path(), Timestamp.refusal(text))
        }
        return t
    }

    /// A checksum string, `sha256:` + 64 lowercase hex digits.
    public mutating func readChecksumValue(_ path: @autoclosure () -> String) throws(FormatError) -> Digest256 {
        if let d = try readChecksum(path()) { return d }
        let text = try readString(path())
        throw FormatError(.invalidValue, file: file, field: path(),
                          "\"\(text)\" is not \"sha256:\" followed by 64 lowercase hex digits")
    }

    /// Scans a number per the JSON grammar; returns its text range and whether it is an integer
    /// (no fraction, no exponent).
    private mutating func scanNumber(_ path: @autoclosure () -> String) throws(FormatError) -> (Range<Int>, isInteger: Bool) {
        let start = position
        var isInteger = true
        func digit(_ i: Int) -> Bool { i < bytes.count && bytes[i] >= UInt8(ascii: "0") && bytes[i] <= UInt8(ascii: "9") }
        if position < bytes.count, bytes[position] == UInt8(ascii: "-") { position += 1 }
        guard digit(position) else { throw syntaxError(path(), "expected a digit") }
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
        } else {
            while digit(position) { position += 1 }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            isInteger = false
            position += 1
            guard digit(position) else { throw syntaxError(path(), "expected a digit after '.'") }
            while digit(position) { position += 1 }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            isInteger = false
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
            guard digit(position) else { throw syntaxError(path(), "expected a digit in the exponent") }
            while digit(position) { position += 1 }
        }
        return (start..<position, isInteger)
    }

    /// An unsigned integer (no sign, fraction or exponent) that fits in `max`.
    public mutating func readUInt(_ path: @autoclosure () -> String, max: UInt64 = .max) throws(FormatError) -> UInt64 {
        let kind = try peekKind(path())
        guard kind == .number else { throw typeError(path(), expected: "an unsigned integer", found: kind) }
        let (range, isInteger) = try scanNumber(path())
        guard isInteger, bytes[range.lowerBound] != UInt8(ascii: "-") else {
            throw FormatError(.malformed, file: file, field: path(),
                              "expected an unsigned integer, found \(String(decoding: bytes[range], as: UTF8.self))")
        }
        var v: UInt64 = 0
        for b in bytes[range] {
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(b - UInt8(ascii: "0")))
            if o1 || o2 || a > max {
                throw FormatError(.invalidValue, file: file, field: path(),
                                  "\(String(decoding: bytes[range], as: UTF8.self)) is larger than \(max)")
            }
            v = a
        }
        return v
    }

    public mutating func readDouble(_ path: @autoclosure () -> String) throws(FormatError) -> Double {
        let kind = try peekKind(path())
        guard kind == .number else { throw typeError(path(), expected: "a number", found: kind) }
        let (range, _) = try scanNumber(path())
        let text = String(decoding: bytes[range], as: UTF8.self)
        guard let v = Double(text), v.isFinite else {
            throw FormatError(.invalidValue, file: file, field: path(), "\(text) is not a finite number")
        }
        return v
    }

    /// Skips any value and returns its exact text, so that fields this version does not know
    /// can be written back unchanged.
    public mutating func readRawValue(_ path: @autoclosure () -> String) throws(FormatError) -> String {
        let kind = try peekKind(path())
        let start = position
        switch kind {
        case .object: try readObject(path()) { (r: inout JSONReader, k: String) throws(FormatError) in _ = try r.readRawValue(path() + "." + k) }
        case .array: try readArray(path()) { (r: inout JSONReader, i: Int) throws(FormatError) in _ = try r.readRawValue("\(path())[\(i)]") }
        case .string: _ = try readStringLiteral(path())
        case .number: _ = try scanNumber(path())
        case .bool, .null:
            for word in ["true", "false", "null"] {
                let w = Array(word.utf8)
                if position + w.count <= bytes.count, Array(bytes[position..<position + w.count]) == w {
                    position += w.count
                    return word
                }
            }
            throw syntaxError(path(), "expected a value")
        }
        return String(decoding: bytes[start..<position], as: UTF8.self)
    }
}
