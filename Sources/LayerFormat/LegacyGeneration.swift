/// How a parsed Jessy region (`LegacyRegion`) becomes a generation the mount serves and
/// `layerfs import` writes: v1 layer ids, computed checksums, timestamps from Jessy's Unix
/// seconds, and Jessy's own fields kept (as xattrs on the mount, as an unknown index field
/// on import). docs/FORMAT.md, "Legacy Jessy regions", says the same for users.
public struct LegacyDetails: Sendable {
    public var layout: LegacyRegion.Layout
    /// What the parser recovered from (the overflowed JSON header): shown as `user.warning`,
    /// by `info` and by `verify`.
    public var warnings: [LegacyRegion.Warning]
    /// Aligned with `Generation.layers` (sorted by v1 id).
    public var layers: [LegacyLayerAttributes]
}

/// Jessy's layer fields that format v1 has no place for, as the mount shows them (`user.name`,
/// `user.depth`, `user.parent`, `user.children`); nil where the layout has no such field.
public struct LegacyLayerAttributes: Sendable {
    public var name: String?
    public var depth: String?
    public var parent: String?
    public var children: String?
}

extension LegacyRegion.Layout {
    /// `user.format`, and the name `info` and `verify` print.
    public var formatName: String {
        switch self {
        case .jessyJSON: return "jessy-json"
        case .jessyText: return "jessy-text"
        }
    }
}

extension LegacyRegion {
    /// Jessy numbers layers from 0; format v1 ids start at 1. Every legacy layer id is
    /// shifted by one, in every dimension and in both layouts, on the mount and by import
    /// alike: a copy taken off the mount packs into what import writes, and a reference to a
    /// layer in another dimension (parent, children) shifts the same way without knowing that
    /// dimension. Jessy's own id stays in the index's `jessy` field. nil: no v1 id (2^32-1).
    public static func v1ID(_ jessy: UInt32) -> UInt32? {
        jessy == UInt32.max ? nil : jessy + 1
    }

    /// A Jessy layer reference as the mount's path of that layer: `D01/layer-004`.
    static func mountPath(_ ref: LayerRef) -> String {
        DimensionLocation.directoryName(for: UInt32(ref.dimension)) + "/" + PackInput.fileName(forLayer: UInt32(ref.layer) + 1)
    }

    /// Jessy's Unix seconds as a timestamp; clamped to what RFC 3339 can write (year 9999).
    static func timestamp(_ seconds: UInt64) -> Timestamp {
        Timestamp(seconds: Int64(min(seconds, 253_402_300_799)))
    }

    /// Everything Jessy recorded about a layer, in Jessy's own numbering, as one JSON object:
    /// the index's unknown field `jessy`, so that an import loses nothing.
    func jessyField(_ layer: Layer) -> String {
        var parts: [String] = []
        func ref(_ r: LayerRef) -> String { "{\"dimension\": \(r.dimension), \"layer\": \(r.layer)}" }
        switch layout {
        case .jessyJSON:
            parts.append("\"layer_id\": " + ref(LayerRef(dimension: UInt8(truncatingIfNeeded: dimensionID ?? 0), layer: UInt16(truncatingIfNeeded: layer.id))))
        case .jessyText:
            parts.append("\"layer_id\": \(layer.id)")
        }
        if let name = layer.name { parts.append("\"name\": " + JSONText.quote(name)) }
        if let depth = layer.depth { parts.append("\"depth\": \(depth)") }
        if layout == .jessyJSON {
            parts.append("\"parent\": " + (layer.parent.map(ref) ?? "null"))
            parts.append("\"children\": [" + layer.children.map(ref).joined(separator: ", ") + "]")
        }
        if let t = layer.lastAccessed { parts.append("\"last_accessed\": \(t)") }
        if let n = layer.accessCount { parts.append("\"access_count\": \(n)") }
        return "{" + parts.joined(separator: ", ") + "}"
    }

    /// The dimension-level counterpart of `jessyField`.
    var jessyDimensionField: String {
        var parts = ["\"layout\": " + JSONText.quote(layout.formatName)]
        if let createdAt { parts.append("\"created_at\": \(createdAt)") }
        if let declaredCapacity { parts.append("\"size\": \(declaredCapacity)") }
        return "{" + parts.joined(separator: ", ") + "}"
    }

    /// The index a v1 writer would have written for these bytes: v1 ids, checksums of the
    /// layers' bytes in `bytes`, timestamps (a layer's `updated_at` is its `last_accessed`,
    /// else the region's `created_at`, else `fallbackTime`, the file's mtime), offsets as in
    /// the file. `file` names the region in errors.
    public func index(bytes: UnsafeRawBufferPointer, dimensionID expected: UInt32, fallbackTime: Timestamp,
                      file: String) throws(FormatError) -> (DimensionIndex, [LegacyLayerAttributes]) {
        if let d = dimensionID, d != expected {
            throw FormatError(.mismatch, file: file, field: layout == .jessyJSON ? "layers[0].layer_id.dimension" : "header.DIMENSION",
                              "is \(d) but the directory means dimension \(expected)")
        }
        let created = createdAt.map(LegacyRegion.timestamp) ?? fallbackTime
        var entries: [(LayerEntry, LegacyLayerAttributes)] = []
        entries.reserveCapacity(layers.count)
        for (i, layer) in layers.enumerated() {
            guard let id = LegacyRegion.v1ID(layer.id) else {
                throw FormatError(.invalidValue, file: file, field: "layers[\(i)]" + (layout == .jessyJSON ? ".layer_id.layer" : ".LAYER"), layer: layer.id,
                                  "\(layer.id) has no format v1 id (Jessy's ids are shown plus one, and v1 ids end at 4294967295)")
            }
            if let problem = Keywords.limitProblem(layer.keywords) {
                throw FormatError(.invalidValue, file: file, field: "layers[\(i)]" + (layout == .jessyJSON ? ".keywords" : ".KEYWORDS"), layer: layer.id, problem)
            }
            let checksum = Digest256.sha256(UnsafeRawBufferPointer(rebasing: bytes[Int(layer.offset)..<Int(layer.offset + layer.size)]))
            let entry = LayerEntry(id: id, offset: layer.offset, size: layer.size, checksum: checksum, frequency: layer.frequency,
                                   keywords: layer.keywords, updatedAt: layer.lastAccessed.map(LegacyRegion.timestamp) ?? created,
                                   extraFields: [("jessy", jessyField(layer))])
            let attributes = LegacyLayerAttributes(
                name: layer.name, depth: layer.depth.map { String($0) },
                parent: layer.parent.map(LegacyRegion.mountPath),
                children: layout == .jessyJSON ? layer.children.map(LegacyRegion.mountPath).joined(separator: ",") : nil)
            entries.append((entry, attributes))
        }
        entries.sort { $0.0.id < $1.0.id }
        // The dimension changed last when its most recent layer did.
        let updated = entries.compactMap { $0.0.updatedAt }.max() ?? created
        let index = DimensionIndex(dimensionID: expected, dimensionName: dimensionName.isEmpty ? nil : dimensionName,
                                   createdAt: created, updatedAt: updated, layerCount: UInt32(entries.count),
                                   totalSize: UInt64(bytes.count), regionChecksum: nil, layers: entries.map(\.0),
                                   extraFields: [("jessy", jessyDimensionField)])
        return (index, entries.map(\.1))
    }
}
