/// Everything that can be wrong with a volume on disk, as one typed error.
///
/// Every message names the file and the field so that a user can find the problem with a hex
/// dump or a text editor: `consciousness/D03/index.json: layers[2].checksum: ...`.
public struct FormatError: Error, Equatable, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable {
        /// The file is absent, a directory, a FIFO, unreadable, empty or too short.
        case unusableFile
        /// The bytes do not parse (bad magic, malformed JSON, wrong type).
        case malformed
        /// A field has a value the format does not allow.
        case invalidValue
        /// Two files (or a file and its directory name) disagree: not one generation.
        case mismatch
        /// A layer's bytes do not hash to its checksum.
        case checksumMismatch
        /// The region is larger than the configured maximum.
        case tooLarge
        /// A system call failed (errno in the message).
        case system
    }

    public var kind: Kind
    /// The file the problem is in, as given by the caller (usually relative to the volume).
    public var file: String
    /// The field, e.g. `header.magic`, `layers[3].offset`, `region_checksum`; empty when the
    /// problem is the file as a whole.
    public var field: String
    public var message: String
    /// The layer the problem concerns, when there is one.
    public var layerID: UInt32?

    public init(_ kind: Kind, file: String, field: String = "", layer: UInt32? = nil, _ message: String) {
        self.kind = kind
        self.file = file
        self.field = field
        self.message = message
        self.layerID = layer
    }

    public var description: String {
        var s = file
        if let layerID { s += ": layer \(layerID)" }
        if !field.isEmpty { s += ": \(field)" }
        return s + ": " + message
    }
}
