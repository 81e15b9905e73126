import LayerFormat

/// One dimension as `layerfs status` and the metrics file show it: read-only figures taken
/// under the slot's lock, one slot at a time.
public struct DimensionStatus: Sendable {
    /// The slot number: node ids carry it, so the binding's per-dimension counters use it too.
    public var slot: Int
    /// `D01`, or the proto name.
    public var name: String
    /// `consciousness/D01`, `proto/draft`.
    public var path: String
    /// unloaded, empty, loaded, failed, removed.
    public var phase: String
    /// The served generation's region checksum (`user.generation`).
    public var generation: String?
    public var layers: Int
    /// The served layers' bytes.
    public var bytes: UInt64
    /// The served generation's updated_at.
    public var updatedAt: Timestamp?
    /// Why the dimension (or its newest files) is not served.
    public var error: String?
    public var history: LoadHistory
    /// Generations no longer served that the kernel still holds node ids in.
    public var retiredHeld: Int
    /// Lookups the kernel holds, over every held generation.
    public var lookupsOutstanding: UInt64
}

extension FileSystem {
    /// Every dimension the mount knows, in slot order (removed ones included, so that their
    /// counters still have a name).
    public func dimensionStatuses() -> [DimensionStatus] {
        directory.withLock { $0.slots }.map { slot in
            slot.withState { state -> DimensionStatus in
                let phase: String
                var error: String?
                switch state.phase {
                case .unloaded: phase = "unloaded"
                case .empty: phase = "empty"
                case .loaded: phase = "loaded"
                case .failed(let e): phase = "failed"; error = e.description
                case .removed: phase = "removed"
                }
                if error == nil { error = state.pendingError?.description }
                let served = state.served
                return DimensionStatus(
                    slot: slot.slot, name: slot.location.name, path: slot.location.displayPath, phase: phase,
                    generation: served?.regionChecksum.checksumString, layers: served?.table.records.count ?? 0,
                    bytes: served?.table.records.reduce(UInt64(0)) { $0 + $1.size } ?? 0,
                    updatedAt: served?.updatedAt, error: error, history: state.history,
                    retiredHeld: state.held.retiredCount, lookupsOutstanding: state.held.outstanding)
            }
        }
    }

    /// The dimension path a slot number names (`consciousness/D01`), for counters' labels.
    public func dimensionPath(slot: Int) -> String? {
        directory.withLock { dir in slot >= 1 && slot <= dir.slots.count ? dir.slots[slot - 1].location.displayPath : nil }
    }

    /// What a layer node id names, for the access log: its dimension, layer id and the
    /// generation (region checksum) the node resolves to. Nil for other nodes.
    public func describeLayer(_ node: NodeID) -> (dimension: String, layer: UInt32, generation: String)? {
        guard node.isLayer, let (served, _, _) = try? layer(node), let path = dimensionPath(slot: node.slot) else { return nil }
        return (path, node.layerID, served.regionChecksum.checksumString)
    }
}
