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
        /// What happens to the region's pages a READ has just served (one copy in memory).
        public var servedPages: ServedPagePolicy = .drop
        /// How node ids carry versions; tests narrow the tag to reach its wrap in a few updates.
        public var nodeTagging = NodeTagging()
        /// The first version a slot gives out; tests start near a tag wrap.
        public var firstVersion: UInt64 = 1
        /// Owners and modes shown (the volume's own unless overridden).
        public var presentation = Presentation()
        /// Told of every generation served or refused (the access log); called under the slot's lock.
        public var generationEvents: (@Sendable (GenerationEvent) -> Void)?
        /// A writable mount (`--writable`): writes are staged and committed as generations.
        public var writable = false
        /// Seconds a commit waits for another writer's lock before failing with EBUSY.
        public var commitLockWait: Double = 10

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
    /// A writable mount's staged files, handles and pending commits (empty when read-only).
    let staging = Staging()
    /// The device number of this mount (0 until the daemon has mounted). A dimension directory
    /// on it lies under the mountpoint (a bind mount made later can put it there): reading it
    /// would send requests to this daemon from inside a load, which waits on itself.
    private let ownMountDevice = Atomic<UInt64>(0)

    public func setOwnMountDevice(_ device: UInt64) { ownMountDevice.store(device, ordering: .releasing) }

    /// Whether `path` is on this mount. Called with no lock held: the stat itself may be
    /// answered by this daemon.
    func isOnOwnMount(_ path: String) -> Bool {
        // No stat until the device is known (tests, and the moments before the mount exists).
        guard ownMountDevice.load(ordering: .acquiring) != 0 else { return false }
        return isOwnDevice(PathStatus(path)?.device)
    }

    func isOwnDevice(_ device: UInt64?) -> Bool {
        let own = ownMountDevice.load(ordering: .acquiring)
        return own != 0 && device == own
    }

    static func ownMountError(_ location: DimensionLocation) -> FormatError {
        FormatError(.unusableFile, file: location.displayPath,
                    "lies under this mount's own mountpoint (a bind mount?): not served, since the daemon would read through itself")
    }

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.volume = Volume(base: configuration.base)
        let locations = volume.dimensions()
        directory.withLock { dir in
            for location in locations { add(location, to: &dir) }
        }
    }

    @discardableResult
    func add(_ location: DimensionLocation, to dir: inout SlotDirectory) -> DimensionSlot? {
        guard dir.slots.count < Int(UInt16.max) else { return nil }
        let slot = DimensionSlot(slot: dir.slots.count + 1, location: location,
                                 tagging: configuration.nodeTagging, firstVersion: configuration.firstVersion)
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

    /// The slot a dimension directory's node id names, if that directory is still there: a
    /// node id of a removed dimension, or of an earlier incarnation, answers ENOENT.
    func dimension(_ node: NodeID) throws(FSError) -> DimensionSlot {
        guard node.isDimension else { throw node.isLayer ? .notDirectory : .notFound }
        let slot = try slot(node.slot)
        guard slot.withState({ $0.isCurrentDirectory(node) }) else { throw .notFound }
        return slot
    }

    func visibleSlots(proto: Bool) -> [DimensionSlot] {
        let all = directory.withLock { $0.slots }
        return all.filter { slot in
            if slot.withState({ $0.isRemoved }) { return false }
            if case .proto = slot.location.kind { return proto } else { return !proto }
        }.sorted { a, b in
            switch (a.location.kind, b.location.kind) {
            case (.consciousness(let x), .consciousness(let y)): return x < y
            default: return a.location.name < b.location.name
            }
        }
    }

    /// A writable mount shows proto/ always, so that `mkdir proto/NAME` has somewhere to go.
    var showsProto: Bool { isWritable || !visibleSlots(proto: true).isEmpty }

    /// Runs `body` on a slot's state under its lock, loading the dimension first if this is
    /// the first access. Loading happens under the slot's lock: concurrent first accesses wait
    /// for one load; other dimensions do not. One lock acquisition per request on the read path.
    func withLoadedState<R, E: Error>(_ slot: DimensionSlot,
                                      _ body: (inout sending DimensionSlot.State) throws(E) -> sending R) throws(E) -> sending R {
        // Checked before the lock: the check may itself reach this daemon.
        let onOwnMount = slot.withState { $0.isUnloaded } && isOnOwnMount(slot.location.directory)
        return try slot.withState { (state) throws(E) -> sending R in
            if onOwnMount && state.isUnloaded {
                state.leave(to: .failed(FileSystem.ownMountError(slot.location)))
                logger.error("dimension \(slot.location.displayPath) lies under the mountpoint of this mount: not served")
            }
            if state.isUnloaded {
                switch DimensionSlot.load(slot.location, into: &state, maxRegionSize: configuration.maxRegionSize,
                                         events: configuration.generationEvents) {
                case .taken, .vanished: break
                case .rejected(let error): logger.error("dimension \(slot.location.displayPath) is not served: \(error.description)")
                case .deferred(let layer): logger.warning("dimension \(slot.location.displayPath): load deferred, layer \(layer) has no free node id until older generations are forgotten")
                }
                // Parsing the index allocated far more than the compact table keeps: give the
                // freed pages back, or a 100 000-layer dimension leaves tens of MB of RSS.
                malloc_trim(0)
            }
            return try body(&state)
        }
    }

    /// The generation and record a layer node id points to: the served generation, or an
    /// older one the kernel still holds.
    func layer(_ node: NodeID) throws(FSError) -> (ServedGeneration, LayerRecord, Int) {
        guard node.isLayer else { throw .notFound }
        let slot = try slot(node.slot)
        guard let (generation, i) = slot.withState({ state -> (ServedGeneration, Int)? in
            state.held.resolve(node).map { (state.held.generations[$0.generation].generation, $0.record) }
        }) else { throw .notFound }
        return (generation, generation.table.records[i], i)
    }

    // MARK: - Attributes

    /// A directory of the volume that is not a dimension (the root, proto/): its own owner,
    /// mode and mtime.
    func plainDirectoryAttributes(_ inode: InodeNumber, path: String, links: Int) -> Attributes {
        let s = PathStatus(path)
        let a = Attributes(inode: inode, kind: .directory, permissions: 0, links: UInt32(links),
                           size: 0, uid: s?.uid ?? 0, gid: s?.gid ?? 0, time: Timestamp(seconds: s?.mtime ?? 0))
        return configuration.presentation.apply(a, volumeMode: s?.mode ?? 0o555)
    }

    func rootAttributes() -> Attributes {
        plainDirectoryAttributes(.root, path: configuration.base,
                                 links: 2 + visibleSlots(proto: false).count + (showsProto ? 1 : 0))
    }

    func protoAttributes() -> Attributes {
        plainDirectoryAttributes(.protoDirectory, path: volume.protoDirectory, links: 2 + visibleSlots(proto: true).count)
    }

    /// A dimension directory: owner and time of its served region, else of the directory
    /// itself; ENOENT once it is gone.
    func dimensionEntry(_ slot: DimensionSlot) throws(FSError) -> Entry {
        let inode = InodeNumber.dimension(key: slot.inodeKey)
        let (node, generation, served, failed) = try withLoadedState(slot) { (state) throws(FSError) -> (NodeID, UInt64, ServedGeneration?, Bool) in
            if state.isRemoved { throw .notFound }
            let failed: Bool = if case .failed = state.phase { true } else { false }
            return (state.directoryNode(slot: slot.slot), state.directoryGeneration, state.served, failed)
        }
        // The directory vanished and the watcher has not seen it yet: already gone.
        guard var d = slot.directoryStatus else { throw .notFound }
        // A failed dimension is an empty directory carrying the reason (`user.error`): open to
        // all, so that the reason can be read even where the directory itself cannot.
        if failed { d.mode = 0o555 }
        let a = if let served {
            Attributes(inode: inode, kind: .directory, permissions: 0, links: 2, size: 0, uid: served.uid, gid: served.gid, time: served.updatedAt)
        } else {
            Attributes(inode: inode, kind: .directory, permissions: 0, links: 2, size: 0, uid: d.uid, gid: d.gid, time: Timestamp(seconds: d.mtime))
        }
        var shown = configuration.presentation.apply(a, volumeMode: d.mode)
        if isWritable, let time = pendingDimensionTime(slot.slot) { shown.time = time }
        return Entry(node: node, generation: generation, attributes: shown)
    }

    func layerEntry(_ slot: DimensionSlot, _ served: ServedGeneration, _ record: LayerRecord, _ tagging: NodeTagging) -> Entry {
        Entry(node: .layer(slot: slot.slot, tag: tagging.tag(record.version), id: record.id),
              generation: tagging.generation(record.version), attributes: layerAttributes(slot, served, record))
    }

    func layerAttributes(_ slot: DimensionSlot, _ served: ServedGeneration, _ record: LayerRecord) -> Attributes {
        let a = Attributes(inode: InodeNumber.layer(key: slot.inodeKey, id: record.id), kind: .file, permissions: 0, links: 1,
                           size: record.size, uid: served.uid, gid: served.gid, time: Timestamp(seconds: record.updatedAt))
        var shown = configuration.presentation.apply(a, volumeMode: served.mode)
        if isWritable, let time = pendingLayerTime(slot.slot, record.id) { shown.time = time }
        return shown
    }

    // MARK: - Operations

    /// LOOKUP: the node a name in a directory names. Every layer entry handed out counts as
    /// one lookup until the kernel forgets it, on the generation FORGET will find it in.
    public func lookup(parent: NodeID, name: String) throws(FSError) -> Entry {
        if parent == .root || parent == .protoDirectory {
            let isProto = parent == .protoDirectory
            if !isProto && name == "proto" {
                guard showsProto else { throw .notFound }
                return Entry(node: .protoDirectory, generation: 0, attributes: protoAttributes())
            }
            guard let slot = directory.withLock({ $0.slot(named: name, proto: isProto) }) else { throw .notFound }
            return try dimensionEntry(slot)
        }
        let slot = try dimension(parent)
        if let staged = try stagedLookup(slot, name) { return staged }
        guard let id = PackInput.layerID(fromName: name), PackInput.fileName(forLayer: id) == name else { throw .notFound }
        return try withLoadedState(slot) { (state) throws(FSError) -> Entry in
            // The parent checked above may have gone since: answer as the directory is now.
            guard state.isCurrentDirectory(parent), let served = state.served, let i = served.table.position(of: id) else { throw .notFound }
            state.held.handOut(i)
            return layerEntry(slot, served, served.table.records[i], state.held.tagging)
        }
    }

    /// FORGET: the kernel dropped `count` references to a node. When an old generation has
    /// no references left, its mapping is released (O(1): each generation keeps its total).
    public func forget(_ node: NodeID, count: UInt64) {
        if Staging.isStagedNode(node) { return forgetStaged(node, count: count, fully: true) }
        guard node.isLayer, let slot = try? slot(node.slot) else { return }
        let had = slot.withState { $0.held.forget(node, count: count) }
        if isWritable { forgetStaged(node, count: count, fully: (had ?? 0) <= count) }
        if let had, had < count {
            logger.warning("FORGET of \(count) for \(node) which had \(had) lookups")
        } else if had == nil {
            logger.warning("FORGET of \(count) for \(node), which no held generation has")
        }
    }

    /// GETATTR.
    public func attributes(_ node: NodeID) throws(FSError) -> Attributes {
        if node == .root { return rootAttributes() }
        if node == .protoDirectory { return protoAttributes() }
        if node.isDimension { return try dimensionEntry(try dimension(node)).attributes }
        if let file = stagedFile(node) { return stagedAttributes(file) }
        let (served, record, _) = try layer(node)
        return layerAttributes(try slot(node.slot), served, record)
    }

    /// READDIR / READDIRPLUS from position `offset` (0 = start). `emit` gets each entry and
    /// the offset of the next one; it returns false when the reply buffer is full, and that
    /// entry is not counted as handed out.
    ///
    /// In a dimension, offsets are layer ids + 2 (after ".", ".."), not positions: a listing
    /// that spans an update resumes after the last id it showed, skipping and repeating none of
    /// the layers present in both generations. Each call lists the generation served when it
    /// runs, under the slot's lock, and counts its entries there.
    public func readDirectory(_ node: NodeID, from offset: Int, plus: Bool,
                              _ emit: (DirectoryEntry, Int) -> Bool) throws(FSError) {
        if node == .root || node == .protoDirectory {
            try readRootDirectory(node, from: offset, plus: plus, emit)
            return
        }
        let slot = try dimension(node)
        if isWritable { return try readWritableDirectory(node, slot, from: offset, plus: plus, emit) }
        let parentInode: InodeNumber = if case .proto = slot.location.kind { .protoDirectory } else { .root }
        let selfInode = InodeNumber.dimension(key: slot.inodeKey)
        try withLoadedState(slot) { (state) throws(FSError) in
            guard state.isCurrentDirectory(node) else { throw .notFound }
            // "." and ".." first; their attributes are the kernel's business, not handed out.
            for (position, (name, inode)) in [(".", selfInode), ("..", parentInode)].enumerated() where position >= offset {
                if !emit(DirectoryEntry(name: name, inode: inode, kind: .directory, entry: nil), position + 1) { return }
            }
            guard let served = state.served else { return }
            let records = served.table.records
            let tagging = state.held.tagging
            let after = UInt64(max(offset, 2) - 2)
            guard after < UInt64(UInt32.max) else { return }
            // Indexing, not dropFirst: a 10 000-entry listing arrives in hundreds of calls.
            for i in served.table.firstPosition(atLeast: UInt32(after) + 1)..<records.count {
                let record = records[i]
                let entry = layerEntry(slot, served, record, tagging)
                let item = DirectoryEntry(name: PackInput.fileName(forLayer: record.id), inode: entry.attributes.inode, kind: .file,
                                          entry: plus ? entry : nil)
                if !emit(item, Int(record.id) + 2) { return }
                if plus { state.held.handOut(i) }
            }
        }
    }

    /// The root or proto directory: the dimensions (and proto/), by position.
    func readRootDirectory(_ node: NodeID, from offset: Int, plus: Bool, _ emit: (DirectoryEntry, Int) -> Bool) throws(FSError) {
        var position = offset
        let selfInode: InodeNumber = node == .root ? .root : .protoDirectory
        for (name, inode) in [(".", selfInode), ("..", InodeNumber.root)].dropFirst(min(position, 2)) {
            position += 1
            if !emit(DirectoryEntry(name: name, inode: inode, kind: .directory, entry: nil), position) { return }
        }
        var children: [(String, DimensionSlot?)] = visibleSlots(proto: node == .protoDirectory).map { ($0.location.name, $0) }
        if node == .root && showsProto { children.append(("proto", nil)) }
        for (name, slot) in children.dropFirst(max(0, position - 2)) {
            position += 1
            let entry: DirectoryEntry
            if let slot {
                // A loaded dimension comes with attributes; an unloaded one does not, so that
                // listing the root never loads every index. Directories are not counted (their
                // node ids are never reused for other content), so a listing may hand them out.
                let loaded = !slot.withState { $0.isUnloaded }
                let handed = plus && loaded ? try? dimensionEntry(slot) : nil
                entry = DirectoryEntry(name: name, inode: InodeNumber.dimension(key: slot.inodeKey), kind: .directory, entry: handed)
            } else {
                entry = DirectoryEntry(name: name, inode: .protoDirectory, kind: .directory,
                                       entry: plus ? Entry(node: .protoDirectory, generation: 0, attributes: protoAttributes()) : nil)
            }
            if !emit(entry, position) { return }
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
        if node.isLayer || Staging.isStagedNode(node) { throw .notDirectory }
        _ = try attributes(node)
    }

    /// READ: calls `body` with the bytes [offset, offset + size) clipped to the layer, straight
    /// out of the mapping (no copy). The generation stays alive until `body` returns.
    public func read<R>(_ node: NodeID, offset: UInt64, size: Int, _ body: (UnsafeRawBufferPointer) -> R) throws(FSError) -> R {
        if let file = stagedFile(node) { return try readStaged(file, offset: offset, size: size, body) }
        let (served, record, i) = try layer(node)
        if served.isBroken { throw .io }
        if configuration.verifyReads { try verify(served, record, i) }
        guard offset < record.size else { return body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        let count = min(UInt64(size), record.size - offset)
        return withExtendedLifetime(served) {
            let result = body(served.region.bytes(offset: record.offset + offset, count: count))
            // `body` has replied: the kernel copied the bytes into the FUSE file's page cache.
            releaseServed(served, offset: record.offset + offset, count: count)
            return result
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
            let (removed, served) = slot.withState { ($0.isRemoved, $0.served) }
            if removed { continue }
            files += 1
            var st = stat()
            if stat(slot.location.regionPath, &st) == 0 { bytes += UInt64(st.st_size) }
            if let served { files += UInt64(served.table.records.count) }
        }
        return Statistics(blocks: (bytes + 4095) / 4096, files: files)
    }
}
