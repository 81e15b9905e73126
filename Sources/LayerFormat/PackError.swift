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
    /// INPUT_DIR is absent (or a path component is not a directory).
    case inputMissing(String)
    /// INPUT_DIR exists but is `type` (`a regular file`).
    case inputNotDirectory(String, type: String)
    /// INPUT_DIR cannot be examined or listed for lack of permission.
    case inputDenied(String)
    /// INPUT_DIR cannot be used for another reason: `problem` says which.
    case inputUnusable(String, problem: String)
    /// An entry of the input cannot be examined.
    case entryUnusable(String, problem: String)
    /// A symbolic link in the input, without `--follow-symlinks`; `target` is the link's text.
    case symlinkRefused(String, target: String)
    /// A symbolic link whose resolved `target` lies outside the input's real path `input`.
    case symlinkOutside(String, target: String, input: String)
    /// Some files are named layer-NNN and `others` are not, so no numbering fits all.
    case mixedNames(String, named: Int, others: [String])
    /// Two files whose names give the same layer id (`layer-7`, `layer-007`).
    case duplicateID(String, String, id: UInt32)
    /// The output holds `layers` layers and the input would replace them by `inputLayers`:
    /// none, or fewer than half. Needs `--force`.
    case shrinking(output: String, layers: Int, input: String, inputLayers: Int)

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
        case .inputMissing(let path):
            return "input \(PackError.quote(path)) does not exist"
        case .inputNotDirectory(let path, let type):
            return "input \(PackError.quote(path)) is not a directory (it is \(type))"
        case .inputDenied(let path):
            return "input \(PackError.quote(path)): permission denied"
        case .inputUnusable(let path, let problem):
            return "input \(PackError.quote(path)) \(problem)"
        case .entryUnusable(let path, let problem):
            return "\(PackError.quote(path)): \(problem)"
        case .symlinkRefused(let path, let target):
            return "\(PackError.quote(path)): symbolic link (to \(PackError.quote(target))) refused: links are packed only with --follow-symlinks, and only when they lead to a file inside the input directory"
        case .symlinkOutside(let path, let target, let input):
            return "\(PackError.quote(path)): symbolic link leads to \(PackError.quote(target)), outside the input directory \(PackError.quote(input)); links are never followed out of it"
        case .mixedNames(let directory, let named, let others):
            let shown = others.prefix(3).map(PackError.quote).joined(separator: ", ") + (others.count > 3 ? " and \(others.count - 3) more" : "")
            let files = named == 1 ? "1 file is" : "\(named) files are"
            let not = others.count == 1 ? "1 is not" : "\(others.count) are not"
            return "input \(PackError.quote(directory)): \(files) named layer-NNN and \(not) (\(shown)), so no numbering fits every file; rename or remove \(others.count == 1 ? "it" : "them"), or give --renumber to number all files 1, 2, ... in name order"
        case .shrinking(let output, let layers, let input, let inputLayers):
            let what = inputLayers == 0 ? "an empty one" : "fewer than half its layers"
            return "output \(PackError.quote(output)) has \(layers) \(layers == 1 ? "layer" : "layers") and input \(PackError.quote(input)) has \(inputLayers): replacing a dimension by \(what) needs --force"
        case .duplicateID(let first, let second, let id):
            return "\(PackError.quote(first)) and \(PackError.quote(second)) both name layer \(id)"
        }
    }

    /// 'path': the quoting of every path in pack's messages.
    public static func quote(_ path: String) -> String { "'" + path + "'" }
}
