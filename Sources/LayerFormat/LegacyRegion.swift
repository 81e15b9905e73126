/// A region file as Jessy wrote it before format v1, in either of its two layouts, parsed into
/// byte ranges. `Generation.load` uses it for a region.mmap without `MMAP` magic and without
/// index.json; `LegacyGeneration.swift` turns the result into a v1 index for the mount and for
/// `layerfs import`. Both layouts are described in docs/FORMAT.md, "Legacy Jessy regions".
///
/// The parser only reads; it never trusts a count or an offset before checking it against the
/// file, because these files come from outside and some are damaged (see `Warning`).
public struct LegacyRegion: Equatable, Sendable {
    public enum Layout: String, Sendable {
        /// `RegionBuilder::build_to_file` in Jessy's src/memory/region.rs: `JSON` + metadata,
        /// zero padding to byte 1024, then the layers.
        case jessyJSON
        /// Jessy's scripts/init_mmap.py: a text file of header lines and contents.
        case jessyText
    }

    /// A Jessy layer id, `{"dimension": u8, "layer": u16}`.
    public struct LayerRef: Equatable, Hashable, Sendable {
        public var dimension: UInt8
        public var layer: UInt16
        public init(dimension: UInt8, layer: UInt16) { self.dimension = dimension; self.layer = layer }
    }

    public struct Layer: Equatable, Sendable {
        /// The layer number (`layer_id.layer`, or `LAYER:`). Jessy numbers from 0; format v1
        /// wants ≥ 1, which is the importer's problem, so it is kept as written.
        public var id: UInt32
        /// Where the content starts in the file, in bytes (the text layout's character counts
        /// already converted).
        public var offset: UInt64
        /// The content's length in bytes.
        public var size: UInt64
        public var frequency: Double
        public var keywords: [String]
        /// Fields only the JSON layout has; nil / empty / 0 when absent.
        public var name: String?
        public var depth: UInt64?
        public var parent: LayerRef?
        public var children: [LayerRef]
        public var lastAccessed: UInt64?
        public var accessCount: UInt64?

        public init(id: UInt32, offset: UInt64, size: UInt64, frequency: Double, keywords: [String],
                    name: String? = nil, depth: UInt64? = nil, parent: LayerRef? = nil,
                    children: [LayerRef] = [], lastAccessed: UInt64? = nil, accessCount: UInt64? = nil) {
            self.id = id; self.offset = offset; self.size = size; self.frequency = frequency
            self.keywords = keywords; self.name = name; self.depth = depth; self.parent = parent
            self.children = children; self.lastAccessed = lastAccessed; self.accessCount = accessCount
        }
    }

    /// Something the parser recovered from, for the caller to show; same shape as a
    /// `FormatError` line so that users read both the same way.
    public struct Warning: Equatable, Sendable, CustomStringConvertible {
        public var file: String
        public var field: String
        public var message: String
        public init(file: String, field: String, _ message: String) { self.file = file; self.field = field; self.message = message }
        public var description: String { file + (field.isEmpty ? "" : ": " + field) + ": " + message }
    }

    public var layout: Layout
    /// The dimension the layers belong to: `DIMENSION:` in the text layout; in the JSON layout
    /// the `layer_id.dimension` all layers share (nil when there are no layers).
    public var dimensionID: UInt32?
    public var dimensionName: String
    /// JSON layout: `created_at` (Unix seconds). The text layout has no time.
    public var createdAt: UInt64?
    /// Text layout: the first line's `SIZE:`, which is the dimension's configured capacity in
    /// dimensions.json (`size_bytes`), not anything about this file. Kept, never checked.
    public var declaredCapacity: UInt64?
    /// In file order (text) or metadata order (JSON).
    public var layers: [Layer]
    public var warnings: [Warning]

    public init(layout: Layout, dimensionID: UInt32?, dimensionName: String, createdAt: UInt64?,
                declaredCapacity: UInt64?, layers: [Layer], warnings: [Warning]) {
        self.layout = layout; self.dimensionID = dimensionID; self.dimensionName = dimensionName
        self.createdAt = createdAt; self.declaredCapacity = declaredCapacity; self.layers = layers
        self.warnings = warnings
    }

    /// Jessy's JSON header is this long; layers start here unless the metadata overflowed it.
    public static let jsonHeaderSize = 1024

    /// Which legacy layout `bytes` is in, or nil for neither (a v1 region, or anything else).
    public static func detect(_ bytes: UnsafeRawBufferPointer) -> Layout? {
        // A v1 region may hold the text "JSON" in its first layer; its magic settles it first.
        if startsWith(bytes, "MMAP") { return nil }
        // The text layout is checked before the JSON marker because its content may well
        // mention "JSON" within the first 1024 bytes; init_mmap.py always starts the file so.
        if startsWith(bytes, "DIMENSION:") { return .jessyText }
        if jsonMarker(bytes) != nil { return .jessyJSON }
        return nil
    }

    public static func detect(_ bytes: [UInt8]) -> Layout? {
        bytes.withUnsafeBytes { detect($0) }
    }

    /// Parses a region file's bytes; `file` names it in errors and warnings.
    public init(parsing bytes: UnsafeRawBufferPointer, file: String) throws(FormatError) {
        switch LegacyRegion.detect(bytes) {
        case .jessyJSON: self = try LegacyRegion.parseJSON(bytes, file: file)
        case .jessyText: self = try LegacyRegion.parseText(bytes, file: file)
        case nil:
            throw FormatError(.malformed, file: file, field: "header",
                              "neither a Jessy JSON region (no \"JSON\" marker in the first \(LegacyRegion.jsonHeaderSize) bytes) nor a Jessy text region (does not begin with \"DIMENSION:\")")
        }
    }

    /// Parses `bytes` as `layout` without detecting it first (the fuzzer runs both parsers on
    /// every input this way).
    public init(parsing bytes: UnsafeRawBufferPointer, as layout: Layout, file: String) throws(FormatError) {
        switch layout {
        case .jessyJSON: self = try LegacyRegion.parseJSON(bytes, file: file)
        case .jessyText: self = try LegacyRegion.parseText(bytes, file: file)
        }
    }

    public init(parsing bytes: [UInt8], file: String) throws(FormatError) {
        var result: Result<LegacyRegion, FormatError>?
        bytes.withUnsafeBytes { buffer in
            do throws(FormatError) { result = .success(try LegacyRegion(parsing: buffer, file: file)) } catch { result = .failure(error) }
        }
        switch result {
        case .success(let r): self = r
        case .failure(let e): throw e
        case nil: throw FormatError(.malformed, file: file, "unreadable")
        }
    }

    // MARK: Shared helpers

    static func startsWith(_ bytes: UnsafeRawBufferPointer, _ prefix: String) -> Bool {
        let p = Array(prefix.utf8)
        guard bytes.count >= p.count else { return false }
        for i in 0..<p.count where bytes[i] != p[i] { return false }
        return true
    }

    /// Where `JSON` begins, searched the way Jessy's reader does: the whole four bytes within
    /// the first 1024.
    static func jsonMarker(_ bytes: UnsafeRawBufferPointer) -> Int? {
        let limit = min(bytes.count, jsonHeaderSize)
        guard limit >= 4 else { return nil }
        for i in 0...(limit - 4)
        where bytes[i] == 0x4A && bytes[i + 1] == 0x53 && bytes[i + 2] == 0x4F && bytes[i + 3] == 0x4E {
            return i
        }
        return nil
    }

    /// The rules both layouts share once byte ranges are known: inside the content area, no
    /// id twice, no two non-empty layers sharing a byte. `path(i)` names layer i's fields.
    static func checkLayers(_ layers: [Layer], contentStart: UInt64, fileSize: UInt64, file: String,
                            names: (id: String, offset: String, size: String), path: (Int) -> String) throws(FormatError) {
        for (i, layer) in layers.enumerated() {
            if layer.offset > fileSize {
                throw FormatError(.invalidValue, file: file, field: path(i) + names.offset, layer: layer.id,
                                  "byte \(layer.offset) is past the end of the file (\(fileSize) bytes)")
            }
            let (end, overflow) = layer.offset.addingReportingOverflow(layer.size)
            if overflow || end > fileSize {
                throw FormatError(.invalidValue, file: file, field: path(i) + names.size, layer: layer.id,
                                  "bytes [\(layer.offset), \(overflow ? "overflow" : String(end))) run past the end of the file (\(fileSize) bytes)")
            }
            if layer.offset < contentStart {
                throw FormatError(.invalidValue, file: file, field: path(i) + names.offset, layer: layer.id,
                                  "byte \(layer.offset) is inside the header, which ends at byte \(contentStart)")
            }
        }
        var seen: [UInt32: Int] = [:]
        for (i, layer) in layers.enumerated() {
            if let first = seen[layer.id] {
                throw FormatError(.invalidValue, file: file, field: path(i) + names.id, layer: layer.id,
                                  "layer \(layer.id) appears twice (also \(path(first)))")
            }
            seen[layer.id] = i
        }
        // Empty layers own no bytes, so they can sit anywhere, as in format v1.
        let byOffset = layers.indices.filter { layers[$0].size > 0 }.sorted { layers[$0].offset < layers[$1].offset }
        for k in byOffset.indices.dropFirst() {
            let a = layers[byOffset[k - 1]], b = layers[byOffset[k]]
            if a.offset + a.size > b.offset {
                throw FormatError(.invalidValue, file: file, field: path(byOffset[k]) + names.offset, layer: b.id,
                                  "bytes [\(b.offset), \(b.offset + b.size)) overlap layer \(a.id)'s [\(a.offset), \(a.offset + a.size))")
            }
        }
    }
}

// MARK: - The JSON header layout

extension LegacyRegion {
    static func parseJSON(_ bytes: UnsafeRawBufferPointer, file: String) throws(FormatError) -> LegacyRegion {
        let size = bytes.count
        // Jessy's reader refuses a file shorter than its header, and a writer never makes one.
        guard size >= jsonHeaderSize else {
            throw FormatError(.unusableFile, file: file, field: "header",
                              "file is \(size) bytes, shorter than the \(jsonHeaderSize)-byte JSON header")
        }
        guard let marker = jsonMarker(bytes) else {
            throw FormatError(.malformed, file: file, field: "header", "no \"JSON\" marker in the first \(jsonHeaderSize) bytes")
        }
        let textStart = marker + 4
        var textEnd: Int
        var contentStart = jsonHeaderSize
        var overflowed = false
        var warnings: [Warning] = []
        if let zero = (textStart..<jsonHeaderSize).first(where: { bytes[$0] == 0 }) {
            // The normal case, read as Jessy reads it: the text up to the first zero byte.
            textEnd = zero
        } else {
            // Jessy's bug: metadata that does not fit is not padded and the layers follow it
            // directly. The end of the JSON value is where the layers start.
            textEnd = try endOfJSONObject(bytes, from: textStart, file: file)
            guard textEnd >= jsonHeaderSize else {
                throw FormatError(.malformed, file: file, field: "metadata",
                                  "the metadata ends at byte \(textEnd) but no zero byte pads it to byte \(jsonHeaderSize)")
            }
            contentStart = textEnd
            // Also when the metadata is exactly 1020 bytes: nothing overflows, but there is
            // no zero byte either, and Jessy then reads no layers.
            overflowed = true
        }
        let overflow = UInt64(contentStart - jsonHeaderSize)
        let text = Array(bytes[textStart..<textEnd])
        var metadata = try parseMetadata(text, file: file)

        if overflowed {
            // Shift every recorded offset by the overflow; the recovery counts only if the
            // shifted layers then end exactly where the file does, as Jessy lays them out.
            for i in metadata.layers.indices {
                let (shifted, o) = metadata.layers[i].offset.addingReportingOverflow(overflow)
                guard !o else {
                    throw FormatError(.invalidValue, file: file, field: "layers[\(i)].offset", layer: metadata.layers[i].id,
                                      "\(metadata.layers[i].offset) plus the overflow of \(overflow) bytes is too large")
                }
                metadata.layers[i].offset = shifted
            }
            let end = metadata.layers.map { $0.offset &+ $0.size }.max() ?? UInt64(contentStart)
            guard end == UInt64(size) else {
                throw FormatError(.invalidValue, file: file, field: "layers",
                                  "the metadata overflows the \(jsonHeaderSize)-byte header by \(overflow) bytes; shifted by that, the layers end at byte \(end), not at the end of the file (\(size) bytes), so they cannot be located")
            }
            warnings.append(Warning(file: file, field: "metadata",
                                    "the metadata is \(textEnd - textStart) bytes and fills the \(jsonHeaderSize)-byte header without a terminating zero byte (a bug in Jessy's writer), so Jessy reads no layers from this file; recovered: the layers start right after the metadata, at byte \(contentStart), and every recorded offset is short by \(overflow) bytes"))
        }
        try checkLayers(metadata.layers, contentStart: UInt64(contentStart), fileSize: UInt64(size), file: file,
                        names: (".layer_id.layer", ".offset", ".size")) { "layers[\($0)]" }
        // Jessy writes total_size as 1024 + the layers' sizes, which is the file's size unless
        // the header overflowed; anything else means a truncated or extended file.
        if metadata.totalSize &+ overflow != UInt64(size) {
            throw FormatError(.mismatch, file: file, field: "total_size",
                              "\(metadata.totalSize)\(overflow > 0 ? " plus the overflow of \(overflow)" : "") is not the file's size, \(size) bytes")
        }
        return LegacyRegion(layout: .jessyJSON, dimensionID: metadata.dimensionID, dimensionName: metadata.name,
                            createdAt: metadata.createdAt, declaredCapacity: nil, layers: metadata.layers, warnings: warnings)
    }

    /// The end (exclusive) of the JSON object that starts at `from`, found by counting brackets
    /// outside strings, so that only the metadata is copied out of a possibly large file.
    /// Syntax is checked afterwards by `JSONReader`.
    static func endOfJSONObject(_ bytes: UnsafeRawBufferPointer, from: Int, file: String) throws(FormatError) -> Int {
        guard from < bytes.count, bytes[from] == UInt8(ascii: "{") else {
            throw FormatError(.malformed, file: file, field: "metadata", "expected '{' right after the \"JSON\" marker at byte \(from)")
        }
        var depth = 0, inString = false, escaped = false
        var i = from
        while i < bytes.count {
            let b = bytes[i]
            if inString {
                if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
            } else {
                switch b {
                case UInt8(ascii: "\""): inString = true
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 { return i + 1 }
                default: break
                }
            }
            i += 1
        }
        throw FormatError(.malformed, file: file, field: "metadata",
                          "no zero byte ends the metadata in the first \(jsonHeaderSize) bytes, and its JSON object never closes before the end of the file")
    }

    struct Metadata {
        var name = ""
        var createdAt: UInt64?
        var totalSize: UInt64 = 0
        var dimensionID: UInt32?
        var layers: [Layer] = []
    }

    static func parseMetadata(_ text: [UInt8], file: String) throws(FormatError) -> Metadata {
        var reader = JSONReader(bytes: text, file: file)
        var m = Metadata()
        var version: UInt64?, totalSize: UInt64?, contentOffset: UInt64?
        var layers: [Layer]?, layerDimensions: [UInt8] = []
        try reader.readObject("") { (r: inout JSONReader, key: String) throws(FormatError) in
            switch key {
            case "version": version = try r.readUInt(key, max: UInt64(UInt32.max))
            case "created_at": m.createdAt = try r.readUInt(key)
            case "dimension_name": m.name = try r.readString(key)
            case "total_size": totalSize = try r.readUInt(key)
            case "content_offset": contentOffset = try r.readUInt(key)
            case "layers":
                var list: [Layer] = []
                try r.readArray(key) { (r: inout JSONReader, i: Int) throws(FormatError) in
                    let (layer, dimension) = try parseLayer(&r, path: "layers[\(i)]", file: file)
                    list.append(layer)
                    layerDimensions.append(dimension)
                }
                layers = list
            // serde ignores unknown fields by default, and so does this reader.
            default: _ = try r.readRawValue(key)
            }
        }
        try reader.finish()
        guard let version else { throw FormatError(.malformed, file: file, field: "version", "missing") }
        guard version == 1 else { throw FormatError(.invalidValue, file: file, field: "version", "\(version) is not 1, the only version Jessy wrote") }
        guard let totalSize else { throw FormatError(.malformed, file: file, field: "total_size", "missing") }
        guard let layers else { throw FormatError(.malformed, file: file, field: "layers", "missing") }
        // Offsets are absolute and Jessy always starts content at 1024; another value would mean
        // a layout nobody documented, so refuse rather than guess.
        if let contentOffset, contentOffset != UInt64(jsonHeaderSize) {
            throw FormatError(.invalidValue, file: file, field: "content_offset", "\(contentOffset) is not \(jsonHeaderSize), the only value Jessy wrote")
        }
        // One region is one dimension; layers of two would collide once served under one DNN.
        if let first = layerDimensions.first, let i = layerDimensions.firstIndex(where: { $0 != first }) {
            throw FormatError(.mismatch, file: file, field: "layers[\(i)].layer_id.dimension", layer: layers[i].id,
                              "\(layerDimensions[i]) differs from layers[0]'s dimension \(first)")
        }
        m.totalSize = totalSize
        m.layers = layers
        m.dimensionID = layerDimensions.first.map(UInt32.init)
        return m
    }

    static func parseLayerRef(_ r: inout JSONReader, path: String, file: String) throws(FormatError) -> LayerRef {
        var dimension: UInt64?, layer: UInt64?
        try r.readObject(path) { (r: inout JSONReader, key: String) throws(FormatError) in
            switch key {
            case "dimension": dimension = try r.readUInt(path + ".dimension", max: UInt64(UInt8.max))
            case "layer": layer = try r.readUInt(path + ".layer", max: UInt64(UInt16.max))
            default: _ = try r.readRawValue(path + "." + key)
            }
        }
        guard let dimension else { throw FormatError(.malformed, file: file, field: path + ".dimension", "missing") }
        guard let layer else { throw FormatError(.malformed, file: file, field: path + ".layer", "missing") }
        return LayerRef(dimension: UInt8(dimension), layer: UInt16(layer))
    }

    static func parseLayer(_ r: inout JSONReader, path: String, file: String) throws(FormatError) -> (Layer, UInt8) {
        var id: LayerRef?, offset: UInt64?, size: UInt64?
        var layer = Layer(id: 0, offset: 0, size: 0, frequency: 1.0, keywords: [])
        try r.readObject(path) { (r: inout JSONReader, key: String) throws(FormatError) in
            let p = path + "." + key
            switch key {
            case "layer_id": id = try parseLayerRef(&r, path: p, file: file)
            case "offset": offset = try r.readUInt(p)
            case "size": size = try r.readUInt(p)
            case "name": layer.name = try r.readString(p)
            case "frequency": layer.frequency = try r.readDouble(p)
            case "depth": layer.depth = try r.readUInt(p, max: UInt64(UInt8.max))
            case "keywords":
                try r.readArray(p) { (r: inout JSONReader, i: Int) throws(FormatError) in layer.keywords.append(try r.readString("\(p)[\(i)]")) }
            case "parent":
                if try r.peekKind(p) == .null { _ = try r.readRawValue(p) } else { layer.parent = try parseLayerRef(&r, path: p, file: file) }
            case "children":
                try r.readArray(p) { (r: inout JSONReader, i: Int) throws(FormatError) in layer.children.append(try parseLayerRef(&r, path: "\(p)[\(i)]", file: file)) }
            case "last_accessed": layer.lastAccessed = try r.readUInt(p)
            case "access_count": layer.accessCount = try r.readUInt(p)
            default: _ = try r.readRawValue(p)
            }
        }
        guard let id else { throw FormatError(.malformed, file: file, field: path + ".layer_id", "missing") }
        guard let offset else { throw FormatError(.malformed, file: file, field: path + ".offset", layer: UInt32(id.layer), "missing") }
        guard let size else { throw FormatError(.malformed, file: file, field: path + ".size", layer: UInt32(id.layer), "missing") }
        layer.id = UInt32(id.layer); layer.offset = offset; layer.size = size
        return (layer, id.dimension)
    }
}

// MARK: - The text layout

extension LegacyRegion {
    /// Walks a UTF-8 buffer by Unicode scalars, which is what Python's `len()` counts (not
    /// grapheme clusters: "e\u{301}" is two), validating as it goes so that each error names
    /// the part of the file it is in.
    struct ScalarCursor {
        let bytes: UnsafeRawBufferPointer
        var byte = 0
        var scalar: UInt64 = 0

        /// The length of the valid UTF-8 sequence at `i`, nil if invalid, -n if the file ends
        /// n bytes short of the sequence its first byte announces.
        func sequenceLength(at i: Int) -> Int? {
            let b0 = bytes[i]
            let n: Int, lowMin: UInt8, lowMax: UInt8
            switch b0 {
            case 0x00...0x7F: return 1
            case 0xC2...0xDF: n = 2; lowMin = 0x80; lowMax = 0xBF
            case 0xE0: n = 3; lowMin = 0xA0; lowMax = 0xBF        // no overlong forms
            case 0xED: n = 3; lowMin = 0x80; lowMax = 0x9F        // no surrogates
            case 0xE1...0xEC, 0xEE...0xEF: n = 3; lowMin = 0x80; lowMax = 0xBF
            case 0xF0: n = 4; lowMin = 0x90; lowMax = 0xBF
            case 0xF1...0xF3: n = 4; lowMin = 0x80; lowMax = 0xBF
            case 0xF4: n = 4; lowMin = 0x80; lowMax = 0x8F        // nothing above U+10FFFF
            default: return nil
            }
            for k in 1..<n {
                guard i + k < bytes.count else { return -(n - k) }
                let b = bytes[i + k]
                if k == 1 ? !(lowMin...lowMax).contains(b) : !(0x80...0xBF).contains(b) { return nil }
            }
            return n
        }

        /// Advances `count` scalars. `field` and `layer` name what is being read in errors.
        mutating func advance(_ count: UInt64, file: String, field: String, countField: String? = nil, layer: UInt32?) throws(FormatError) {
            let countField = countField ?? field
            let target = scalar &+ count
            while scalar < target {
                guard byte < bytes.count else {
                    throw FormatError(.invalidValue, file: file, field: countField, layer: layer,
                                      "\(count) characters run past the end of the file (\(scalar) characters, \(bytes.count) bytes)")
                }
                guard let n = sequenceLength(at: byte) else {
                    throw FormatError(.malformed, file: file, field: field, layer: layer,
                                      "invalid UTF-8 at byte \(byte) (0x\(String(bytes[byte], radix: 16)))")
                }
                guard n > 0 else {
                    throw FormatError(.invalidValue, file: file, field: countField, layer: layer,
                                      "\(count) characters end inside a multi-byte character: the file ends \(-n) byte(s) into it, at byte \(bytes.count)")
                }
                byte += n
                scalar += 1
            }
        }

        /// Reads a line up to (not including) "\n" and steps past the newline. nil when the
        /// file ends first.
        mutating func line(file: String, field: String, layer: UInt32?) throws(FormatError) -> String? {
            let start = byte, startScalar = scalar
            while byte < bytes.count, bytes[byte] != 0x0A {
                try advance(1, file: file, field: field, layer: layer)
            }
            guard byte < bytes.count else { byte = start; scalar = startScalar; return nil }
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<byte]), as: UTF8.self)
            byte += 1; scalar += 1
            return text
        }
    }

    /// Splits `A:x|B:y|...` into the values of `names`, in order. The first `fixedFront` and
    /// the last `fixedBack` fields are single; the one in between takes the rest, `|`s and all,
    /// because init_mmap.py does not escape the free text (a name, the keywords).
    static func fields(_ line: String, _ names: [String], fixedFront: Int, file: String, field: String, layer: UInt32?) throws(FormatError) -> [String] {
        let parts = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        let fixedBack = names.count - fixedFront - 1
        guard parts.count >= names.count else {
            throw FormatError(.malformed, file: file, field: field, layer: layer,
                              "expected \(names.map { $0 + ":…" }.joined(separator: "|")), found \"\(line.prefix(200))\"")
        }
        var values = Array(parts[0..<fixedFront])
        values.append(parts[fixedFront..<(parts.count - fixedBack)].joined(separator: "|"))
        values += parts[(parts.count - fixedBack)...]
        var out: [String] = []
        for (value, name) in zip(values, names) {
            guard value.hasPrefix(name + ":") else {
                throw FormatError(.malformed, file: file, field: field + "." + name, layer: layer,
                                  "expected \"\(name):\", found \"\(value.prefix(100))\"")
            }
            out.append(String(value.dropFirst(name.count + 1)))
        }
        return out
    }

    static func number(_ text: String, file: String, field: String, layer: UInt32?, max: UInt64 = .max) throws(FormatError) -> UInt64 {
        // Python's str(int): decimal digits only; UInt64("+5") would accept a sign.
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let v = UInt64(text), v <= max else {
            throw FormatError(.invalidValue, file: file, field: field, layer: layer, "\"\(text.prefix(100))\" is not an unsigned integer up to \(max)")
        }
        return v
    }

    static func parseText(_ bytes: UnsafeRawBufferPointer, file: String) throws(FormatError) -> LegacyRegion {
        var cursor = ScalarCursor(bytes: bytes)
        guard let header = try cursor.line(file: file, field: "header", layer: nil) else {
            throw FormatError(.malformed, file: file, field: "header", "the first line has no newline")
        }
        let h = try fields(header, ["DIMENSION", "NAME", "SIZE", "LAYERS"], fixedFront: 1, file: file, field: "header", layer: nil)
        let dimension = try number(h[0], file: file, field: "header.DIMENSION", layer: nil, max: UInt64(UInt32.max))
        let capacity = try number(h[2], file: file, field: "header.SIZE", layer: nil)
        let count = try number(h[3], file: file, field: "header.LAYERS", layer: nil)

        var layers: [Layer] = []
        // The walk follows the file as the writer laid it out, one layer after another; each
        // OFFSET is checked against where its header line really is.
        while cursor.byte < bytes.count {
            let i = layers.count
            let path = "layers[\(i)]"
            let lineStart = cursor.scalar
            guard let line = try cursor.line(file: file, field: path, layer: nil) else {
                throw FormatError(.malformed, file: file, field: path, "the layer header line at character \(lineStart) has no newline")
            }
            let f = try fields(line, ["LAYER", "DEPTH", "FREQ", "KEYWORDS", "OFFSET", "SIZE"], fixedFront: 3, file: file, field: path, layer: nil)
            let id = UInt32(try number(f[0], file: file, field: path + ".LAYER", layer: nil, max: UInt64(UInt32.max)))
            let depth = try number(f[1], file: file, field: path + ".DEPTH", layer: id)
            guard let frequency = Frequency.parse(f[2]) else {
                throw FormatError(.invalidValue, file: file, field: path + ".FREQ", layer: id, "\"\(f[2].prefix(100))\" is not a decimal number")
            }
            // ",".join([]) is "", which is no keywords rather than one empty keyword.
            let keywords = f[3].isEmpty ? [] : f[3].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            let offset = try number(f[4], file: file, field: path + ".OFFSET", layer: id)
            let size = try number(f[5], file: file, field: path + ".SIZE", layer: id)
            if offset != lineStart {
                let why = offset < lineStart ? "the previous layer ends there, so they would overlap" : "the layers would leave a gap"
                throw FormatError(.invalidValue, file: file, field: path + ".OFFSET", layer: id,
                                  "says character \(offset), but this layer's header line is at character \(lineStart); \(why)")
            }
            let contentByte = cursor.byte
            try cursor.advance(size, file: file, field: path + ".content", countField: path + ".SIZE", layer: id)
            let contentEnd = cursor.byte
            // The writer ends every content with "\n"; finding anything else means SIZE does
            // not count what the writer wrote (a byte count, say), and the next layer is lost.
            guard cursor.byte < bytes.count, bytes[cursor.byte] == 0x0A else {
                throw FormatError(.invalidValue, file: file, field: path + ".SIZE", layer: id,
                                  "\(size) characters from byte \(contentByte) are not followed by the newline that ends a layer (found \(cursor.byte < bytes.count ? "byte 0x" + String(bytes[cursor.byte], radix: 16) : "the end of the file"))")
            }
            cursor.byte += 1; cursor.scalar += 1
            layers.append(Layer(id: id, offset: UInt64(contentByte), size: UInt64(contentEnd - contentByte),
                                frequency: frequency, keywords: keywords, depth: depth))
        }
        if UInt64(layers.count) != count {
            throw FormatError(.mismatch, file: file, field: "header.LAYERS", "says \(count) but the file holds \(layers.count) layers")
        }
        try checkLayers(layers, contentStart: UInt64(header.utf8.count + 1), fileSize: UInt64(bytes.count), file: file,
                        names: (".LAYER", ".OFFSET", ".SIZE")) { "layers[\($0)]" }
        return LegacyRegion(layout: .jessyText, dimensionID: UInt32(dimension), dimensionName: h[1], createdAt: nil,
                            declaredCapacity: capacity, layers: layers, warnings: [])
    }
}
