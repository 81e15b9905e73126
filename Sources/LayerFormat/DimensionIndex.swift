/// One layer's entry in index.json.
public struct LayerEntry: Equatable, Sendable {
    public var id: UInt32
    public var offset: UInt64
    /// Exact content length in bytes, no padding; 0 is allowed.
    public var size: UInt64
    public var checksum: Digest256
    public var frequency: Double
    public var keywords: [String]
    /// nil when the index leaves it out: the index's `updated_at` applies.
    public var updatedAt: Timestamp?
    /// Fields this version does not know, as raw JSON text, kept for writers.
    public var extraFields: [(key: String, json: String)]

    public init(id: UInt32, offset: UInt64, size: UInt64, checksum: Digest256, frequency: Double = 1.0,
                keywords: [String] = [], updatedAt: Timestamp? = nil, extraFields: [(key: String, json: String)] = []) {
        self.id = id; self.offset = offset; self.size = size; self.checksum = checksum
        self.frequency = frequency; self.keywords = keywords; self.updatedAt = updatedAt
        self.extraFields = extraFields
    }

    public static func == (a: LayerEntry, b: LayerEntry) -> Bool {
        a.id == b.id && a.offset == b.offset && a.size == b.size && a.checksum == b.checksum
            && a.frequency == b.frequency && a.keywords == b.keywords && a.updatedAt == b.updatedAt
            && a.extraFields.map(\.key) == b.extraFields.map(\.key) && a.extraFields.map(\.json) == b.extraFields.map(\.json)
    }
}

/// index.json, parsed. Optional fields stay optional here; `Generation` applies the defaults,
/// because they depend on the directory (canonical names) and the region file (mtime).
public struct DimensionIndex: Equatable, Sendable {
    public var dimensionID: UInt32
    public var dimensionName: String?
    public var version: UInt32
    public var createdAt: Timestamp?
    public var updatedAt: Timestamp?
    public var layerCount: UInt32
    public var totalSize: UInt64
    public var regionChecksum: Digest256?
    public var layers: [LayerEntry]
    public var extraFields: [(key: String, json: String)]

    public init(dimensionID: UInt32, dimensionName: String?, createdAt: Timestamp?, updatedAt: Timestamp?,
                layerCount: UInt32, totalSize: UInt64, regionChecksum: Digest256?, layers: [LayerEntry],
                extraFields: [(key: String, json: String)] = []) {
        self.dimensionID = dimensionID; self.dimensionName = dimensionName; self.version = 1
        self.createdAt = createdAt; self.updatedAt = updatedAt; self.layerCount = layerCount
        self.totalSize = totalSize; self.regionChecksum = regionChecksum; self.layers = layers
        self.extraFields = extraFields
    }

    public static func == (a: DimensionIndex, b: DimensionIndex) -> Bool {
        a.dimensionID == b.dimensionID && a.dimensionName == b.dimensionName && a.version == b.version
            && a.createdAt == b.createdAt && a.updatedAt == b.updatedAt && a.layerCount == b.layerCount
            && a.totalSize == b.totalSize && a.regionChecksum == b.regionChecksum && a.layers == b.layers
            && a.extraFields.map(\.key) == b.extraFields.map(\.key) && a.extraFields.map(\.json) == b.extraFields.map(\.json)
    }
}

// MARK: - Reading

extension DimensionIndex {
    /// Parses index.json. Checks syntax, types and each field on its own (required fields,
    /// checksum spelling, layer_id ≥ 1, timestamps, the keywords' length); the rules that relate fields to each other
    /// or to the region (counts, bounds, overlaps, duplicates) are `Generation`'s.
    public init(parsing bytes: [UInt8], file: String) throws(FormatError) {
        var reader = JSONReader(bytes: bytes, file: file)
        var dimensionID: UInt32?, version: UInt32?, layerCount: UInt32?, totalSize: UInt64?
        var name: String?, created: Timestamp?, updated: Timestamp?, regionChecksum: Digest256?
        var layers: [LayerEntry]?
        var extra: [(key: String, json: String)] = []

        try reader.readObject("") { (r: inout JSONReader, key: String) throws(FormatError) in
            switch key {
            case "dimension_id": dimensionID = UInt32(try r.readUInt(key, max: UInt64(UInt32.max)))
            case "version": version = UInt32(try r.readUInt(key, max: UInt64(UInt32.max)))
            case "layer_count": layerCount = UInt32(try r.readUInt(key, max: UInt64(UInt32.max)))
            case "total_size": totalSize = try r.readUInt(key)
            case "dimension_name": name = try r.readString(key)
            case "created_at": created = try r.readTimestamp(key)
            case "updated_at": updated = try r.readTimestamp(key)
            case "region_checksum": regionChecksum = try r.readChecksumValue(key)
            case "layers":
                var list: [LayerEntry] = []
                try r.readArray(key) { (r: inout JSONReader, i: Int) throws(FormatError) in
                    list.append(try LayerEntry(reading: &r, index: i, file: file))
                }
                layers = list
            default: extra.append((key, try r.readRawValue(key)))
            }
        }
        try reader.finish()

        func missing(_ field: String) -> FormatError {
            FormatError(.malformed, file: file, field: field, "required field is missing")
        }
        guard let dimensionID else { throw missing("dimension_id") }
        guard let version else { throw missing("version") }
        guard version == 1 else {
            throw FormatError(.invalidValue, file: file, field: "version", "unsupported version \(version) (this layerfs reads version 1)")
        }
        guard let layerCount else { throw missing("layer_count") }
        guard let totalSize else { throw missing("total_size") }
        guard let layers else { throw missing("layers") }
        self.init(dimensionID: dimensionID, dimensionName: name, createdAt: created, updatedAt: updated,
                  layerCount: layerCount, totalSize: totalSize, regionChecksum: regionChecksum,
                  layers: layers, extraFields: extra)
    }
}

extension LayerEntry {
    /// Paths (`layers[12].offset`) are built only when there is an error to report: a
    /// 100 000-layer index would otherwise build a million strings nobody reads.
    init(reading r: inout JSONReader, index: Int, file: String) throws(FormatError) {
        func path() -> String { "layers[\(index)]" }
        var id: UInt32?, offset: UInt64?, size: UInt64?, sum: Digest256?
        var frequency = 1.0
        var keywords: [String] = []
        var updated: Timestamp?
        var extra: [(key: String, json: String)] = []
        try r.readObject(path()) { (r: inout JSONReader, key: String) throws(FormatError) in
            func field() -> String { path() + "." + key }
            switch key {
            case "layer_id": id = UInt32(try r.readUInt(field(), max: UInt64(UInt32.max)))
            case "offset": offset = try r.readUInt(field())
            case "size": size = try r.readUInt(field())
            case "checksum": sum = try r.readChecksumValue(field())
            case "frequency": frequency = try r.readDouble(field())
            case "updated_at": updated = try r.readTimestamp(field())
            case "keywords":
                try r.readArray(field()) { (r: inout JSONReader, i: Int) throws(FormatError) in
                    keywords.append(try r.readString("\(field())[\(i)]"))
                }
            default: extra.append((key, try r.readRawValue(field())))
            }
        }
        func missing(_ name: String) -> FormatError {
            FormatError(.malformed, file: file, field: path() + "." + name, "required field is missing")
        }
        guard let id else { throw missing("layer_id") }
        guard id != 0 else {
            throw FormatError(.invalidValue, file: file, field: path() + ".layer_id", "layer_id 0 is not allowed (ids are 1 to 4294967295)")
        }
        if let problem = Keywords.limitProblem(keywords) {
            throw FormatError(.invalidValue, file: file, field: path() + ".keywords", layer: id, problem)
        }
        guard let offset else { throw missing("offset") }
        guard let size else { throw missing("size") }
        guard let sum else { throw missing("checksum") }
        self.init(id: id, offset: offset, size: size, checksum: sum, frequency: frequency,
                  keywords: keywords, updatedAt: updated, extraFields: extra)
    }
}

// MARK: - Writing

extension DimensionIndex {
    /// The index as JSON text: fixed field order, two-space indent, one layer per entry,
    /// so that the same index always gives the same bytes.
    public var serialized: [UInt8] {
        var out = "{\n"
        var fields: [(String, String)] = [
            ("dimension_id", String(dimensionID)),
            ("dimension_name", JSONText.quote(dimensionName ?? "")),
            ("version", String(version)),
        ]
        if let createdAt { fields.append(("created_at", JSONText.quote(createdAt.rfc3339))) }
        if let updatedAt { fields.append(("updated_at", JSONText.quote(updatedAt.rfc3339))) }
        fields.append(("layer_count", String(layerCount)))
        fields.append(("total_size", String(totalSize)))
        if let regionChecksum { fields.append(("region_checksum", JSONText.quote(regionChecksum.checksumString))) }
        if dimensionName == nil { fields.remove(at: 1) }
        for (k, v) in extraFields { fields.append((k, v)) }
        for (k, v) in fields { out += "  \(JSONText.quote(k)): \(v),\n" }
        out += "  \"layers\": ["
        for (i, layer) in layers.enumerated() {
            out += i == 0 ? "\n" : ",\n"
            out += "    " + layer.serialized
        }
        out += layers.isEmpty ? "]\n}\n" : "\n  ]\n}\n"
        return Array(out.utf8)
    }
}

extension LayerEntry {
    var serialized: String {
        var parts = [
            "\"layer_id\": \(id)", "\"offset\": \(offset)", "\"size\": \(size)",
            "\"checksum\": \(JSONText.quote(checksum.checksumString))",
            "\"frequency\": \(Frequency.format(frequency))",
            "\"keywords\": [" + keywords.map(JSONText.quote).joined(separator: ", ") + "]",
        ]
        if let updatedAt { parts.append("\"updated_at\": \(JSONText.quote(updatedAt.rfc3339))") }
        for (k, v) in extraFields { parts.append("\(JSONText.quote(k)): \(v)") }
        return "{ " + parts.joined(separator: ", ") + " }"
    }
}

/// JSON string literals, for the index writer and the command's `--json` output alike.
public enum JSONText {
    public static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
