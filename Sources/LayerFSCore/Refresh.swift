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
                    guard case .removed = state.phase else { return false }
                    state.phase = .unloaded
                    state.signature = nil
                    return true
                }
                if reappeared {
                    logger.info("dimension \(location.displayPath) appeared again")
                    out += [.entry(parent: parent, name: location.name), .directory(parent), .directory(.dimension(slot: slot.slot))]
                }
            } else if directory.withLock({ FileSystem.add(location, to: &$0) }) != nil {
                logger.info("dimension \(location.displayPath) appeared")
                out += [.entry(parent: parent, name: location.name), .directory(parent)]
            }
        }
        for slot in directory.withLock({ $0.slots }) {
            let isProto: Bool = if case .proto = slot.location.kind { true } else { false }
            guard !presentPaths.contains(slot.location.displayPath) else { continue }
            let names = slot.withState { state -> [String]? in
                if case .removed = state.phase { return nil }
                var names: [String] = []
                if case .loaded(let served) = state.phase {
                    names = served.table.records.map { PackInput.fileName(forLayer: $0.id) }
                    state.retire(served)
                }
                state.phase = .removed
                return names
            }
            guard let names else { continue }
            logger.info("dimension \(slot.location.displayPath) went away")
            let node = NodeID.dimension(slot: slot.slot)
            out += [.entry(parent: isProto ? .protoDirectory : .root, name: slot.location.name), .directory(isProto ? .protoDirectory : .root)]
            out += names.map { .entry(parent: node, name: $0) } + [.directory(node)]
        }
        if hadProto != showsProto { out += [.entry(parent: .root, name: "proto"), .directory(.root)] }
        return out
    }

    /// A new generation of one dimension, if its files changed and form one.
    func refresh(_ slot: DimensionSlot) -> [Invalidation] {
        let node = NodeID.dimension(slot: slot.slot)
        let signature = DimensionSignature.read(slot.location)
        struct Change { var before: [UInt32: UInt16]; var after: [UInt32: UInt16]; var error: FormatError?; var broken = false }
        let change: Change? = slot.withState { state -> Change? in
            switch state.phase {
            case .unloaded, .removed: return nil
            default: break
            }
            defer { state.releaseForgotten() }
            guard signature != state.signature, signature != state.rejected else { return nil }
            if case .loaded(let served) = state.phase, let old = state.signature, signature.regionModifiedInPlace(comparedTo: old) {
                // Same file, new bytes: a writer broke the rules. Nothing in it can be
                // trusted until a new file (a new generation) appears.
                guard !served.isBroken else { return nil }
                served.markBroken()
                state.rejected = signature
                return Change(before: [:], after: [:], broken: true)
            }
            let before = FileSystem.epochs(state.phase)
            let error = DimensionSlot.load(slot.location, into: &state, maxRegionSize: configuration.maxRegionSize)
            malloc_trim(0)
            return Change(before: before, after: FileSystem.epochs(state.phase), error: error)
        }
        guard let change else { return [] }
        if change.broken {
            logger.error("\(slot.location.displayPath)/region.mmap was modified in place: reads of it answer EIO until a new generation is written")
            return []
        }
        if let error = change.error {
            logger.warning("\(slot.location.displayPath): update not taken (still serving the previous state): \(error.description)")
            return [.directory(node)]
        }
        var out: [Invalidation] = []
        for (id, epoch) in change.before where change.after[id] != epoch {
            out.append(.entry(parent: node, name: PackInput.fileName(forLayer: id)))
        }
        for (id, _) in change.after where change.before[id] == nil {
            out.append(.entry(parent: node, name: PackInput.fileName(forLayer: id)))
        }
        if case .loaded(let served) = slot.withState({ $0.phase }) {
            logger.info("\(slot.location.displayPath): serving generation \(served.epoch) (\(served.regionChecksum.checksumString)), \(out.count) names changed")
        }
        return out + [.directory(node)]
    }

    static func epochs(_ phase: DimensionSlot.Phase) -> [UInt32: UInt16] {
        guard case .loaded(let served) = phase else { return [:] }
        var out: [UInt32: UInt16] = [:]
        out.reserveCapacity(served.table.records.count)
        for r in served.table.records { out[r.id] = r.epoch }
        return out
    }
}
