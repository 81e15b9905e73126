import LayerFormat

/// READDIR of a dimension on a writable mount: the served layers, minus deletions not yet
/// committed, with staged files in place of (or beside) them. Offsets stay layer id + 2, so
/// a listing that spans a commit resumes as the read-only one does; scratch files come after
/// every layer, at offsets from 2^33 by name.
///
/// Lock order: the slot's lock, then staging's (to count a staged entry's lookup); staging's
/// lock is never held while a slot's is taken.
extension FileSystem {
    static let scratchOffsetBase = 1 << 33

    func readWritableDirectory(_ node: NodeID, _ slot: DimensionSlot, from offset: Int, plus: Bool,
                               _ emit: (DirectoryEntry, Int) -> Bool) throws(FSError) {
        let parentInode: InodeNumber = if case .proto = slot.location.kind { .protoDirectory } else { .root }
        let selfInode = InodeNumber.dimension(key: slot.inodeKey)
        let (staged, deleted) = staging.state.withLock { s in
            (s.byName.filter { $0.key.slot == slot.slot }.map { ($0.key.name, $0.value) }, s.deletions[slot.slot] ?? [])
        }
        var stagedLayers: [UInt32: StagedFile] = [:]
        var scratch: [(String, StagedFile)] = []
        for (name, file) in staged {
            if let id = PackInput.layerID(fromName: name) { stagedLayers[id] = file } else { scratch.append((name, file)) }
        }
        scratch.sort { $0.0 < $1.0 }
        func stagedItem(_ name: String, _ file: StagedFile) -> DirectoryEntry {
            let attributes = stagedAttributes(file)
            return DirectoryEntry(name: name, inode: attributes.inode, kind: .file,
                                  entry: plus ? Entry(node: file.node, generation: 0, attributes: attributes) : nil)
        }
        func countLookup(_ file: StagedFile) { if plus { staging.state.withLock { _ in file.lookups += 1 } } }
        let finished = try withLoadedState(slot) { (state) throws(FSError) -> Bool in
            guard state.isCurrentDirectory(node) else { throw .notFound }
            for (position, (name, inode)) in [(".", selfInode), ("..", parentInode)].enumerated() where position >= offset {
                if !emit(DirectoryEntry(name: name, inode: inode, kind: .directory, entry: nil), position + 1) { return false }
            }
            let records = state.served?.table.records ?? []
            let servedIDs = records.map(\.id)
            let ids = Set(servedIDs).union(stagedLayers.keys).subtracting(deleted.subtracting(stagedLayers.keys)).sorted()
            let after = UInt64(max(offset, 2) - 2)
            for id in ids where UInt64(id) > after {
                let name = PackInput.fileName(forLayer: id)
                if let file = stagedLayers[id] {
                    if !emit(stagedItem(name, file), Int(id) + 2) { return false }
                    countLookup(file)
                } else if let served = state.served, let i = served.table.position(of: id) {
                    let entry = layerEntry(slot, served, records[i], state.held.tagging)
                    let item = DirectoryEntry(name: name, inode: entry.attributes.inode, kind: .file, entry: plus ? entry : nil)
                    if !emit(item, Int(id) + 2) { return false }
                    if plus { state.held.handOut(i) }
                }
            }
            return true
        }
        guard finished else { return }
        for (k, (name, file)) in scratch.enumerated() where FileSystem.scratchOffsetBase + k >= offset {
            if !emit(stagedItem(name, file), FileSystem.scratchOffsetBase + k + 1) { return }
            countLookup(file)
        }
    }
}
