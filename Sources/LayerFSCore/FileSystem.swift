import CLinux
import Glibc
import LayerFormat
import Logging
import Synchronization

/// The filesystem core: the mount's context object. It knows nothing of FUSE: each operation
/// is a plain method that returns values or throws `FSError`; the binding replies with them.
///
/// Concurrency: operations are called from libfuse's worker threads at once, `refresh` from
/// the watcher thread. Locks: `directory` (the slot list) and each slot's own; neither is
/// held while taking the other, and none is held while the kernel is notified.
public final class FileSystem: Sendable {
    public struct Configuration: Sendable {
        public var base: String
        public var maxRegionSize: UInt64?
        public var cache = CachePolicy()
        /// Check each layer's SHA-256 (through pread) before serving its first byte.
        public var verifyReads = false

        public init(base: String) { self.base = base }
    }

    /// The dimensions the mount knows. Slots are only ever appended (a dimension that goes
    /// away keeps its slot, marked removed), so a slot number in a node id stays meaningful.
    struct SlotDirectory {
        var slots: [DimensionSlot] = []
        var byName: [String: Int] = [:]
        var protoByName: [String: Int] = [:]

        func slot(named name: String, proto: Bool) -> DimensionSlot? {
            (proto ? protoByName[name] : byName[name]).map { slots[$0 - 1] }
        }
    }

    public let configuration: Configuration
    public let logger: Logger
    let volume: Volume
    let directory = Mutex(SlotDirectory())

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.volume = Volume(base: configuration.base)
        directory.withLock { dir in
            for location in volume.dimensions() { FileSystem.add(location, to: &dir) }
        }
    }

    @discardableResult
    static func add(_ location: DimensionLocation, to dir: inout SlotDirectory) -> DimensionSlot? {
        guard dir.slots.count < Int(UInt16.max) else { return nil }
        let slot = DimensionSlot(slot: dir.slots.count + 1, location: location)
        dir.slots.append(slot)
        if case .proto = location.kind { dir.protoByName[location.name] = slot.slot } else { dir.byName[location.name] = slot.slot }
        return slot
    }

    public var dimensionCount: Int { directory.withLock { $0.slots.count } }

    // MARK: - Resolving node ids

    func slot(_ index: Int) throws(FSError) -> DimensionSlot {
        try directory.withLock { (dir) throws(FSError) -> DimensionSlot in
            guard index >= 1, index <= dir.slots.count else { throw .notFound }
            return dir.slots[index - 1]
        }
    }

    func visibleSlots(proto: Bool) -> [DimensionSlot] {
        let all = directory.withLock { $0.slots }
        return all.filter { slot in
            if case .removed = slot.withState({ $0.phase }) { return false }
            if case .proto = slot.location.kind { return proto } else { return !proto }
        }.sorted { a, b in
            switch (a.location.kind, b.location.kind) {
            case (.consciousness(let x), .consciousness(let y)): return x < y
            default: return a.location.name < b.location.name
            }
        }
    }

    var showsProto: Bool { !visibleSlots(proto: true).isEmpty }

    /// Runs `body` on a slot's state under its lock, loading the dimension first if this is
    /// the first access. Loading happens under the slot's lock: concurrent first accesses wait
    /// for one load; other dimensions do not. One lock acquisition per request on the read path.
    func withLoadedState<R, E: Error>(_ slot: DimensionSlot,
                                      _ body: (inout sending DimensionSlot.State) throws(E) -> sending R) throws(E) -> sending R {
        try slot.withState { (state) throws(E) -> sending R in
            if case .unloaded = state.phase {
                if let error = DimensionSlot.load(slot.location, into: &state, maxRegionSize: configuration.maxRegionSize) {
                    logger.error("dimension \(slot.location.displayPath) is not served: \(error.description)")
                }
                // Parsing the index allocated far more than the compact table keeps: give the
                // freed pages back, or a 100 000-layer dimension leaves tens of MB of RSS.
                malloc_trim(0)
            }
            return try body(&state)
        }
    }

    /// The phase of a slot, loading the dimension on first access.
    func phase(of slot: DimensionSlot) -> DimensionSlot.Phase {
        withLoadedState(slot) { $0.phase }
    }

    /// The generation and record a layer node id points to: the current generation, or an
    /// older one a reader still holds.
    func layer(_ node: NodeID) throws(FSError) -> (ServedGeneration, LayerRecord, Int) {
        guard node.isLayer else { throw .notFound }
        guard let (generation, i) = withLoadedState(try slot(node.slot), { $0.resolve(node) }) else { throw .notFound }
        return (generation, generation.table.records[i], i)
    }

    // MARK: - Attributes

    func rootAttributes() -> Attributes {
        let s = DimensionSlot.ownerAndTime(configuration.base)
        let subdirectories = visibleSlots(proto: false).count + (showsProto ? 1 : 0)
        return Attributes(inode: .root, kind: .directory, permissions: 0o555, links: UInt32(2 + subdirectories),
                          size: 0, uid: s.uid, gid: s.gid, time: Timestamp(seconds: s.mtime))
    }

    func protoAttributes() -> Attributes {
        let s = DimensionSlot.ownerAndTime(volume.protoDirectory)
        return Attributes(inode: .protoDirectory, kind: .directory, permissions: 0o555, links: UInt32(2 + visibleSlots(proto: true).count),
                          size: 0, uid: s.uid, gid: s.gid, time: Timestamp(seconds: s.mtime))
    }

    func dimensionAttributes(_ slot: DimensionSlot) -> Attributes {
        let inode = InodeNumber.dimension(key: slot.inodeKey)
        if case .loaded(let served) = phase(of: slot) {
            return Attributes(inode: inode, kind: .directory, permissions: 0o555, links: 2, size: 0,
                              uid: served.uid, gid: served.gid, time: served.updatedAt)
        }
        let d = slot.directoryStatus
        return Attributes(inode: inode, kind: .directory, permissions: 0o555, links: 2, size: 0,
                          uid: d.uid, gid: d.gid, time: Timestamp(seconds: d.mtime))
    }

    func layerAttributes(_ slot: DimensionSlot, _ served: ServedGeneration, _ record: LayerRecord) -> Attributes {
        Attributes(inode: InodeNumber.layer(key: slot.inodeKey, id: record.id), kind: .file, permissions: 0o444, links: 1,
                   size: record.size, uid: served.uid, gid: served.gid, time: Timestamp(seconds: record.updatedAt))
    }

    // MARK: - Operations

    /// LOOKUP: the node a name in a directory names. Every layer entry handed out counts as
    /// one lookup until the kernel forgets it.
    public func lookup(parent: NodeID, name: String) throws(FSError) -> Entry {
        if parent == .root || parent == .protoDirectory {
            let isProto = parent == .protoDirectory
            if !isProto && name == "proto" {
                guard showsProto else { throw .notFound }
                return Entry(node: .protoDirectory, attributes: protoAttributes())
            }
            guard let slot = directory.withLock({ $0.slot(named: name, proto: isProto) }) else { throw .notFound }
            if case .removed = slot.withState({ $0.phase }) { throw .notFound }
            return Entry(node: .dimension(slot: slot.slot), attributes: dimensionAttributes(slot))
        }
        guard parent.isDimension else { throw parent.isLayer ? .notDirectory : .notFound }
        let slot = try slot(parent.slot)
        guard let id = PackInput.layerID(fromName: name), PackInput.fileName(forLayer: id) == name else { throw .notFound }
        return try withLoadedState(slot) { (state) throws(FSError) -> Entry in
            guard case .loaded(let served) = state.phase, let i = served.table.position(of: id) else { throw .notFound }
            served.lookups[i] &+= 1
            let record = served.table.records[i]
            return Entry(node: .layer(slot: slot.slot, epoch: record.epoch, id: record.id),
                         attributes: layerAttributes(slot, served, record))
        }
    }

    /// FORGET: the kernel dropped `count` references to a node. When an old generation has
    /// no references left, its mapping is released.
    public func forget(_ node: NodeID, count: UInt64) {
        guard node.isLayer, let slot = try? slot(node.slot) else { return }
        slot.withState { state in
            guard let (generation, i) = state.resolve(node) else { return }
            let current = generation.lookups[i]
            if UInt64(current) < count {
                logger.warning("FORGET of \(count) for \(node) which had \(current) lookups")
            }
            generation.lookups[i] = UInt32(UInt64(current) - min(UInt64(current), count))
            if generation.lookups[i] == 0 && !state.retired.isEmpty { state.releaseForgotten() }
        }
    }

    /// GETATTR.
    public func attributes(_ node: NodeID) throws(FSError) -> Attributes {
        if node == .root { return rootAttributes() }
        if node == .protoDirectory { return protoAttributes() }
        if node.isDimension { return dimensionAttributes(try slot(node.slot)) }
        let (served, record, _) = try layer(node)
        return layerAttributes(try slot(node.slot), served, record)
    }

    /// READDIR / READDIRPLUS from position `offset` (0 = start). `emit` gets each entry and
    /// the offset of the next one; it returns false when the reply buffer is full, and that
    /// entry is not counted as handed out.
    public func readDirectory(_ node: NodeID, from offset: Int, plus: Bool,
                              _ emit: (DirectoryEntry, Int) -> Bool) throws(FSError) {
        var position = offset
        let parentInode: InodeNumber
        if node == .root || node == .protoDirectory {
            parentInode = .root
        } else if node.isDimension {
            if case .proto = try slot(node.slot).location.kind { parentInode = .protoDirectory } else { parentInode = .root }
        } else {
            throw .notDirectory
        }
        let selfInode = try attributes(node).inode
        // "." and ".." first; their attributes are the kernel's business, not handed out.
        for (name, inode) in [(".", selfInode), ("..", parentInode)].dropFirst(min(position, 2)) {
            position += 1
            if !emit(DirectoryEntry(name: name, inode: inode, kind: .directory, entry: nil), position) { return }
        }
        let first = position - 2
        if node == .root || node == .protoDirectory {
            var children: [(String, DimensionSlot?)] = visibleSlots(proto: node == .protoDirectory).map { ($0.location.name, $0) }
            if node == .root && showsProto { children.append(("proto", nil)) }
            for (name, slot) in children.dropFirst(first) {
                position += 1
                let entry: DirectoryEntry
                if let slot {
                    let inode = InodeNumber.dimension(key: slot.inodeKey)
                    // A loaded dimension comes with attributes; an unloaded one does not, so
                    // that listing the root never loads every index.
                    let loaded: Bool = if case .unloaded = slot.withState({ $0.phase }) { false } else { true }
                    entry = DirectoryEntry(name: name, inode: inode, kind: .directory,
                                           entry: plus && loaded ? Entry(node: .dimension(slot: slot.slot), attributes: dimensionAttributes(slot)) : nil)
                } else {
                    entry = DirectoryEntry(name: name, inode: .protoDirectory, kind: .directory,
                                           entry: plus ? Entry(node: .protoDirectory, attributes: protoAttributes()) : nil)
                }
                if !emit(entry, position) { return }
            }
            return
        }
        let slot = try slot(node.slot)
        guard case .loaded(let served) = phase(of: slot) else { return }
        let records = served.table.records
        guard first < records.count else { return }
        // Indexing, not dropFirst: a 10 000-entry listing arrives in hundreds of calls.
        for i in first..<records.count {
            let record = records[i]
            position += 1
            let attributes = layerAttributes(slot, served, record)
            let entry = DirectoryEntry(name: PackInput.fileName(forLayer: record.id), inode: attributes.inode, kind: .file,
                                       entry: plus ? Entry(node: .layer(slot: slot.slot, epoch: record.epoch, id: record.id), attributes: attributes) : nil)
            if !emit(entry, position) { return }
            if plus { slot.withState { $0.handOut(served, i) } }
        }
    }

    /// OPEN: only for reading. `flags` are open(2)'s.
    public func open(_ node: NodeID, flags: Int32) throws(FSError) {
        if flags & O_ACCMODE != O_RDONLY || flags & O_TRUNC != 0 { throw .readOnly }
        if !node.isLayer { throw .isDirectory }
        _ = try layer(node)
    }

    /// OPENDIR.
    public func openDirectory(_ node: NodeID) throws(FSError) {
        if node.isLayer { throw .notDirectory }
        _ = try attributes(node)
    }

    /// READ: calls `body` with the bytes [offset, offset + size) clipped to the layer, straight
    /// out of the mapping (no copy). The generation stays alive until `body` returns.
    public func read<R>(_ node: NodeID, offset: UInt64, size: Int, _ body: (UnsafeRawBufferPointer) -> R) throws(FSError) -> R {
        let (served, record, i) = try layer(node)
        if served.isBroken { throw .io }
        if configuration.verifyReads { try verify(served, record, i) }
        guard offset < record.size else { return body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        let count = min(UInt64(size), record.size - offset)
        return withExtendedLifetime(served) {
            body(served.region.bytes(offset: record.offset + offset, count: count))
        }
    }

    /// --verify-reads: hash the layer once per generation, through pread, before serving it.
    func verify(_ served: ServedGeneration, _ record: LayerRecord, _ i: Int) throws(FSError) {
        switch served.verification(i) {
        case 1: return
        case 2: throw .io
        default:
            let digest = served.region.safeDigest(offset: record.offset, count: record.size)
            let good = digest == record.checksum
            served.setVerification(i, good ? 1 : 2)
            if !good {
                logger.error("layer \(record.id) of dimension \(served.name) does not match its checksum \(record.checksum.checksumString): reads answer EIO")
                throw .io
            }
        }
    }

    /// STATFS: the volume's size (the regions' bytes) and layer count, nothing free.
    public func statistics() -> Statistics {
        var bytes: UInt64 = 0
        var files: UInt64 = 2
        for slot in directory.withLock({ $0.slots }) {
            let phase = slot.withState { $0.phase }
            if case .removed = phase { continue }
            files += 1
            var st = stat()
            if stat(slot.location.regionPath, &st) == 0 { bytes += UInt64(st.st_size) }
            if case .loaded(let served) = phase { files += UInt64(served.table.records.count) }
        }
        return Statistics(blocks: (bytes + 4095) / 4096, files: files)
    }
}
