import LayerFormat

/// One layer as the mount keeps it: plain values, no references, 80 bytes. An object per
/// layer with a String checksum and [String] keywords costs ~300 bytes; a mount of millions
/// of layers keeps this instead.
public struct LayerRecord: Sendable {
    public var id: UInt32
    /// The dimension's epoch when this layer's content last changed (part of its node id).
    public var epoch: UInt16
    /// `user.keywords`, already escaped and joined, at keywordStart..<+keywordLength in the
    /// table's shared buffer.
    public var keywordStart: UInt32
    public var keywordLength: UInt32
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

    public init(generation: Generation, epoch: UInt16) {
        var records: [LayerRecord] = []
        records.reserveCapacity(generation.layers.count)
        var keywords: [UInt8] = []
        for layer in generation.layers {
            let start = keywords.count
            Keywords.append(layer.keywords, to: &keywords)
            records.append(LayerRecord(
                id: layer.id, epoch: epoch,
                keywordStart: UInt32(truncatingIfNeeded: start), keywordLength: UInt32(truncatingIfNeeded: keywords.count - start),
                offset: layer.offset, size: layer.size, updatedAt: generation.updatedAt(of: layer).seconds,
                frequency: layer.frequency, checksum: layer.checksum))
        }
        self.records = records
        self.keywordBytes = keywords
    }

    /// Layers whose content and attributes (checksum, size, mtime) are unchanged since
    /// `previous` keep the epoch they had there, so they keep their node id and the kernel
    /// keeps their cached pages. Any other change gets a new node id: the kernel's cached
    /// attributes of a file that may be open are never invalidated in place.
    mutating func keepEpochs(of previous: LayerTable) {
        for i in records.indices {
            if let j = previous.position(of: records[i].id), previous.records[j].checksum == records[i].checksum,
               previous.records[j].size == records[i].size, previous.records[j].updatedAt == records[i].updatedAt {
                records[i].epoch = previous.records[j].epoch
            }
        }
    }

    /// The position of layer `id`, by binary search.
    public func position(of id: UInt32) -> Int? {
        var low = 0, high = records.count
        while low < high {
            let mid = (low + high) / 2
            if records[mid].id < id { low = mid + 1 } else { high = mid }
        }
        return low < records.count && records[low].id == id ? low : nil
    }

    public func keywords(of record: LayerRecord) -> ArraySlice<UInt8> {
        let start = Int(record.keywordStart)
        return keywordBytes[start..<start + Int(record.keywordLength)]
    }
}
