import LayerFormat

/// One layer as the mount keeps it: plain values, no references, 88 bytes. An object per
/// layer with a String checksum and [String] keywords costs ~300 bytes; a mount of millions
/// of layers keeps this instead.
public struct LayerRecord: Sendable {
    public var id: UInt32
    /// `user.keywords`, already escaped and joined, at keywordStart..<+keywordLength in the
    /// table's shared buffer.
    public var keywordStart: UInt32
    public var keywordLength: UInt32
    /// The dimension's version counter value this content was given when it first appeared in
    /// the mount (its node id's tag and entry generation, see `NodeTagging`).
    public var version: UInt64
    public var offset: UInt64
    public var size: UInt64
    public var updatedAt: Int64
    public var frequency: Double
    public var checksum: Digest256
}

/// The layers of one generation of a dimension, sorted by id, built once when it loads.
public struct LayerTable: Sendable {
    public private(set) var records: [LayerRecord]
    /// Every layer's escaped keyword list, back to back.
    public private(set) var keywordBytes: [UInt8]

    /// Versions are 0 until the slot assigns them (`HeldGenerations.install`).
    public init(generation: Generation) {
        var records: [LayerRecord] = []
        records.reserveCapacity(generation.layers.count)
        var keywords: [UInt8] = []
        for layer in generation.layers {
            let start = keywords.count
            Keywords.append(layer.keywords, to: &keywords)
            records.append(LayerRecord(
                id: layer.id,
                keywordStart: UInt32(truncatingIfNeeded: start), keywordLength: UInt32(truncatingIfNeeded: keywords.count - start), version: 0,
                offset: layer.offset, size: layer.size, updatedAt: generation.updatedAt(of: layer).seconds,
                frequency: layer.frequency, checksum: layer.checksum))
        }
        self.records = records
        self.keywordBytes = keywords
    }

    /// Whether `other` shows the same file as `records[i]`: same bytes (checksum, size) and
    /// mtime. Only then may it keep its node id (and the kernel its cached pages and
    /// attributes); a file that may be open is never changed under the same node id.
    func sameContent(_ i: Int, as other: LayerRecord) -> Bool {
        let r = records[i]
        return r.checksum == other.checksum && r.size == other.size && r.updatedAt == other.updatedAt
    }

    mutating func setVersion(_ i: Int, _ version: UInt64) { records[i].version = version }

    /// The first position whose id is at least `id` (records.count when none).
    public func firstPosition(atLeast id: UInt32) -> Int {
        var low = 0, high = records.count
        while low < high {
            let mid = (low + high) / 2
            if records[mid].id < id { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// The position of layer `id`, by binary search.
    public func position(of id: UInt32) -> Int? {
        let low = firstPosition(atLeast: id)
        return low < records.count && records[low].id == id ? low : nil
    }

    public func keywords(of record: LayerRecord) -> ArraySlice<UInt8> {
        let start = Int(record.keywordStart)
        return keywordBytes[start..<start + Int(record.keywordLength)]
    }
}
