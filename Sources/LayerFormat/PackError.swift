/// Why `layerfs pack` refuses to write: its own rules about the output directory and the
/// input, beside the format's problems. Printed after `layerfs: `, with every path in single
/// quotes, so that a path with spaces or a colon still reads as one.
public enum PackError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A problem in a file, reported in the format's one form (`FILE: FIELD: message`,
    /// shared with verify).
    case format(FormatError)
    /// OUTPUT_DIR is not the directory the spec names for `option` (`--dimension 5`,
    /// `--proto`). `expected` is the path that would be right, when there is one; `note` says
    /// why, when the expected path alone does not.
    case outputMismatch(output: String, option: String, expected: String?, note: String?)
    /// OUTPUT_DIR, or a directory above it, cannot be used: `problem` says why.
    case outputUnusable(output: String, problem: String)

    public var description: String {
        switch self {
        case .format(let error):
            return error.description
        case .outputMismatch(let output, let option, let expected, let note):
            var s = "output \(PackError.quote(output)) does not match \(option)"
            if let expected {
                if let note { s += " (\(note))" }
                s += ": expected \(PackError.quote(expected))"
            } else if let note {
                s += ": " + note
            }
            return s
        case .outputUnusable(let output, let problem):
            return "output \(PackError.quote(output)) \(problem)"
        }
    }

    /// 'path': the quoting of every path in pack's messages.
    public static func quote(_ path: String) -> String { "'" + path + "'" }
}
