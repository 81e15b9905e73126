/// Which bytes may be pushed into the kernel's page cache ahead of a reader (the prefetcher
/// in LayerFUSE sends them with FUSE_NOTIFY_STORE). The core only chooses; it never talks
/// to the kernel.
public struct PrefetchBatch: @unchecked Sendable {
    // @unchecked: `generation` is Sendable; the ranges are plain values.
    public struct Item: Sendable {
        public let node: NodeID
        public let layerID: UInt32
        /// The bytes: offset into the region, and length.
        public let offset: UInt64
        public let size: UInt64
        /// Where they start in the layer (0 for a whole layer).
        public var layerOffset: UInt64 = 0
    }

    /// Keeps the mapping alive while the items are sent.
    public let generation: ServedGeneration
    public let items: [Item]

    public func bytes(_ item: Item) -> UnsafeRawBufferPointer {
        generation.region.bytes(offset: item.offset, count: item.size)
    }
}

extension FileSystem {
    /// The layers after `node` (by id) in its dimension's served generation that the kernel
    /// holds an inode for (a lookup count above zero: FUSE_NOTIFY_STORE needs the inode), each
    /// at most `largest` bytes, until `budget` bytes; skipping ids up to `after` (already sent).
    ///
    /// Nothing when `node` is not of the served generation (a generation being retired gets
    /// no more pages), when the dimension is not loaded or broken, or on any doubt. A node id
    /// names one content for as long as the kernel may hold it (ARCHITECTURE.md, node ids), so
    /// bytes sent for it are that content's; an id is only reused after a 16-bit tag wraps,
    /// 65 536 versions of the layer later, which cannot happen during one send.
    /// With `including`, `node`'s own layer comes first (the start of a listing).
    public func layersAfter(_ node: NodeID, after: UInt32 = 0, including: Bool = false, budget: UInt64, largest: UInt64,
                            scanLimit: Int = 4096) -> PrefetchBatch? {
        guard node.isLayer, budget > 0, let slot = try? slot(node.slot) else { return nil }
        return slot.withState { state -> PrefetchBatch? in
            guard let served = state.served, !served.isBroken, let last = state.held.generations.last,
                  last.generation === served,
                  let i = served.table.position(of: node.layerID),
                  state.held.tagging.tag(served.table.records[i].version) == node.tag else { return nil }
            let records = served.table.records
            var items: [PrefetchBatch.Item] = []
            var total: UInt64 = 0
            var position = including ? i : max(i + 1, served.table.firstPosition(atLeast: max(node.layerID, after) &+ 1))
            let end = min(records.count, position + scanLimit)
            while position < end {
                let record = records[position]
                defer { position += 1 }
                guard record.size > 0, record.size <= largest, last.lookups[position] > 0 else { continue }
                if total + record.size > budget { break }
                total += record.size
                items.append(PrefetchBatch.Item(node: state.held.node(slot: slot.slot, record), layerID: record.id,
                                                offset: record.offset, size: record.size))
            }
            return items.isEmpty ? nil : PrefetchBatch(generation: served, items: items)
        }
    }

    /// Bytes [from, from + count) of the layer `node` names, clipped to it: for pushing the
    /// rest of a large layer under random reads. The same conditions as `layersAfter`.
    public func layerPart(_ node: NodeID, from: UInt64, count: UInt64) -> PrefetchBatch? {
        guard node.isLayer, count > 0, let slot = try? slot(node.slot) else { return nil }
        return slot.withState { state -> PrefetchBatch? in
            guard let served = state.served, !served.isBroken, let last = state.held.generations.last,
                  last.generation === served,
                  let i = served.table.position(of: node.layerID),
                  state.held.tagging.tag(served.table.records[i].version) == node.tag,
                  last.lookups[i] > 0 else { return nil }
            let record = served.table.records[i]
            guard from < record.size else { return nil }
            let size = min(count, record.size - from)
            return PrefetchBatch(generation: served, items: [PrefetchBatch.Item(node: node, layerID: record.id, offset: record.offset + from,
                                                                                size: size, layerOffset: from)])
        }
    }

    /// Bytes of `batch` were stored into the kernel's cache: they count as served for the
    /// `ServedPagePolicy` (the region's copy of them can go).
    public func stored(_ batch: PrefetchBatch, _ item: PrefetchBatch.Item) {
        releaseServed(batch.generation, offset: item.offset, count: item.size)
    }
}
