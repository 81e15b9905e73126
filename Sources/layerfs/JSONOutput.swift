import LayerFormat
/// A JSON value written out in a fixed key order, for output that scripts read (`info --json`).
/// Written by hand rather than with JSONSerialization, whose dictionaries have no order: the
/// same volume should print the same text every time.
indirect enum JSONOutput {
    case null
    case integer(UInt64)
    /// A number already spelled as JSON (e.g. "12.5").
    case number(String)
    case string(String)
    case array([JSONOutput])
    case object([(String, JSONOutput)])

    static func optional(_ value: UInt64?) -> JSONOutput { value.map(JSONOutput.integer) ?? .null }
    static func optional(_ value: String?) -> JSONOutput { value.map(JSONOutput.string) ?? .null }

    /// Pretty-printed with two-space indents; an object with no nested containers stays on
    /// one line, so a dimension is one line of the output.
    func rendered(indent: Int = 0) -> String {
        switch self {
        case .null: return "null"
        case .integer(let n): return String(n)
        case .number(let text): return text
        case .string(let s): return JSONOutput.quote(s)
        case .array(let items):
            if items.isEmpty { return "[]" }
            let inner = String(repeating: " ", count: indent + 2)
            return "[\n" + items.map { inner + $0.rendered(indent: indent + 2) }.joined(separator: ",\n")
                + "\n" + String(repeating: " ", count: indent) + "]"
        case .object(let fields):
            if fields.isEmpty { return "{}" }
            if fields.allSatisfy({ !$0.1.isContainer }) {
                return "{ " + fields.map { JSONOutput.quote($0.0) + ": " + $0.1.rendered() }.joined(separator: ", ") + " }"
            }
            let inner = String(repeating: " ", count: indent + 2)
            return "{\n" + fields.map { inner + JSONOutput.quote($0.0) + ": " + $0.1.rendered(indent: indent + 2) }.joined(separator: ",\n")
                + "\n" + String(repeating: " ", count: indent) + "}"
        }
    }

    var isContainer: Bool {
        switch self {
        case .array, .object: return true
        default: return false
        }
    }

    /// A JSON string literal: the index writer's quoting.
    static func quote(_ s: String) -> String { JSONText.quote(s) }
}
