import CLinux
import LayerFormat

/// What the kernel must forget after an update: a name in a directory (so the next lookup
/// asks again and gets the new node id), or a directory's attributes and cached listing.
/// Never a layer file's inode: a changed layer gets a new node id instead, so an open file
/// keeps its old bytes and no invalidation can wait on a reader.
public enum Invalidation: Equatable, Sendable {
    case entry(parent: NodeID, name: String)
    case directory(NodeID)
}

extension FileSystem {
    /// Takes every consistent update of the volume: dimensions that appeared or went away,
    /// and new generations of the ones already loaded. Called from the watcher thread, never
    /// from a request; returns what the kernel must be told.
    public func refresh() -> [Invalidation] {
        var out: [Invalidation] = []
        out += refreshDimensionList()
        for slot in directory.withLock({ $0.slots }) {
            out += refresh(slot)
        }
        return out
    }

    /// New and vanished dimension directories.
    func refreshDimensionList() -> [Invalidation] {
        var out: [Invalidation] = []
        let present = volume.dimensions()
        // displayPath ("consciousness/D03", "proto/draft") names a dimension across both kinds.
        let presentPaths = Set(present.map(\.displayPath))
        let hadProto = showsProto
        for location in present {
            let isProto: Bool = if case .proto = location.kind { true } else { false }
            let parent: NodeID = isProto ? .protoDirectory : .root
            if let slot = directory.withLock({ $0.slot(named: location.name, proto: isProto) }) {
                let reappeared = slot.withState { state -> Bool in
                    guard state.isRemoved else { return false }
                    state.reappear()
                    return true
                }
                if reappeared {
                    logger.info("dimension \(location.displayPath) appeared again")
                    out += [.entry(parent: parent, name: location.name), .directory(parent)]
                }
            } else if directory.withLock({ add(location, to: &$0) }) != nil {
                logger.info("dimension \(location.displayPath) appeared")
                out += [.entry(parent: parent, name: location.name), .directory(parent)]
            }
        }
        for slot in directory.withLock({ $0.slots }) {
            let isProto: Bool = if case .proto = slot.location.kind { true } else { false }
            guard !presentPaths.contains(slot.location.displayPath) else { continue }
            let gone = slot.withState { state -> (NodeID, [String])? in
                if state.isRemoved { return nil }
                let names = state.served.map { $0.table.records.map { PackInput.fileName(forLayer: $0.id) } } ?? []
                let node = state.directoryNode(slot: slot.slot)
                state.markRemoved()
                return (node, names)
            }
            guard let (node, names) = gone else { continue }
            logger.info("dimension \(slot.location.displayPath) went away")
            out += [.entry(parent: isProto ? .protoDirectory : .root, name: slot.location.name), .directory(isProto ? .protoDirectory : .root)]
            out += names.map { .entry(parent: node, name: $0) } + [.directory(node)]
        }
        if hadProto != showsProto { out += [.entry(parent: .root, name: "proto"), .directory(.root)] }
        return out
    }

    /// A new generation of one dimension, if its files changed and form one.
    func refresh(_ slot: DimensionSlot) -> [Invalidation] {
        let signature = DimensionSignature.read(slot.location)
        if isOwnDevice(signature.directory?.device) {
            let error = FileSystem.ownMountError(slot.location)
            let newly = slot.withState { state -> NodeID? in
                if state.isUnloaded || state.isRemoved { return nil }
                if case .failed(let e) = state.phase, e == error { return nil }
                state.leave(to: .failed(error))
                return state.directoryNode(slot: slot.slot)
            }
            guard let node = newly else { return [] }
            logger.error("dimension \(slot.location.displayPath) now lies under the mountpoint of this mount: no longer served")
            return [.directory(node)]
        }
        enum Change {
            case none
            case broken
            case rejected(FormatError)
            case deferred(UInt32)
            case taken(before: ServedGeneration?, after: ServedGeneration?)
        }
        let (change, node): (Change, NodeID) = slot.withState { state in
            let node = state.directoryNode(slot: slot.slot)
            switch state.phase {
            case .unloaded, .removed: return (.none, node)
            default: break
            }
            guard signature != state.signature, signature != state.rejected else { return (.none, node) }
            // A legacy region is served from a private copy (Jessy rewrites it in place):
            // its readers keep their bytes, and the rewritten file is simply loaded below.
            if let served = state.served, !served.region.isSnapshot, let old = state.signature,
               signature.regionModifiedInPlace(comparedTo: old) {
                // Same file, new bytes: a writer broke the rules. Nothing in it can be
                // trusted until a new file (a new generation) appears.
                guard !served.isBroken else { return (.none, node) }
                served.markBroken()
                state.rejected = signature
                return (.broken, node)
            }
            let before = state.served
            let outcome = DimensionSlot.load(slot.location, into: &state, maxRegionSize: configuration.maxRegionSize,
                                             events: configuration.generationEvents)
            malloc_trim(0)
            switch outcome {
            case .taken: return (.taken(before: before, after: state.served), node)
            case .rejected(let error): return (.rejected(error), node)
            case .deferred(let layer): return (.deferred(layer), node)
            case .vanished: return (.none, node)
            }
        }
        switch change {
        case .none:
            return []
        case .broken:
            logger.error("\(slot.location.displayPath)/region.mmap was modified in place: reads of it answer EIO until a new generation is written")
            return []
        case .rejected(let error):
            logger.warning("\(slot.location.displayPath): update not taken (still serving the previous state): \(error.description)")
            return [.directory(node)]
        case .deferred(let layer):
            logger.warning("\(slot.location.displayPath): update deferred: layer \(layer) has no free node id until older generations are forgotten")
            return []
        case .taken(let before, let after):
            let names = FileSystem.changedNames(before?.table, after?.table)
            if let after {
                logger.info("\(slot.location.displayPath): serving generation \(after.regionChecksum.checksumString), \(names.count) names changed")
            }
            return names.map { .entry(parent: node, name: PackInput.fileName(forLayer: $0)) } + [.directory(node)]
        }
    }

    /// Layer ids whose node id differs between two tables (changed, added or removed), by one
    /// merge walk over both (sorted by id).
    static func changedNames(_ before: LayerTable?, _ after: LayerTable?) -> [UInt32] {
        let old = before?.records ?? [], new = after?.records ?? []
        var out: [UInt32] = []
        var i = 0, j = 0
        while i < old.count || j < new.count {
            if j == new.count || (i < old.count && old[i].id < new[j].id) {
                out.append(old[i].id); i += 1
            } else if i == old.count || new[j].id < old[i].id {
                out.append(new[j].id); j += 1
            } else {
                if old[i].version != new[j].version { out.append(new[j].id) }
                i += 1; j += 1
            }
        }
        return out
    }
}
