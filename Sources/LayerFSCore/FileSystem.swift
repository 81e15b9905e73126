import Glibc
import LayerFormat
import Logging

/// The filesystem core: the mount's context object. It knows nothing of FUSE: each operation
/// is a plain method that returns values or throws `FSError`; the binding replies with them.
///
/// Concurrency: operations are called from libfuse's worker threads at once. The slot table
/// is fixed at mount time (immutable array); each slot guards its own state with a lock,
/// held only to read a reference or to load that one dimension.
public final class FileSystem: Sendable {
    public struct Configuration: Sendable {
        public var base: String
        public var maxRegionSize: UInt64?
        public var cache = CachePolicy()

        public init(base: String) { self.base = base }
    }

    public let configuration: Configuration
    public let logger: Logger
    /// Slot i+1 is `slots[i]` (slot 0 is the root and the proto directory).
    let slots: [DimensionSlot]
    let consciousnessByName: [String: Int]
    let protoByName: [String: Int]
    let baseStatus: (uid: UInt32, gid: UInt32, mtime: Int64)
    let protoStatus: (uid: UInt32, gid: UInt32, mtime: Int64)

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        let volume = Volume(base: configuration.base)
        var slots: [DimensionSlot] = []
        var consciousness: [String: Int] = [:], proto: [String: Int] = [:]
        for location in volume.dimensions().prefix(Int(UInt16.max)) {
            let slot = DimensionSlot(slot: slots.count + 1, location: location)
            switch location.kind {
            case .consciousness: consciousness[location.name] = slot.slot
            case .proto: proto[location.name] = slot.slot
            }
            slots.append(slot)
        }
        self.slots = slots
        self.consciousnessByName = consciousness
        self.protoByName = proto
        func status(_ path: String) -> (UInt32, UInt32, Int64) {
            var st = stat()
            return stat(path, &st) == 0 ? (st.st_uid, st.st_gid, Int64(st.st_mtim.tv_sec)) : (0, 0, 0)
        }
        baseStatus = status(configuration.base)
        protoStatus = status(volume.protoDirectory)
    }

    public var dimensionCount: Int { slots.count }
    var showsProto: Bool { !protoByName.isEmpty }

    // MARK: - Resolving node ids

    func slot(_ index: Int) throws(FSError) -> DimensionSlot {
        guard index >= 1, index <= slots.count else { throw .notFound }
        return slots[index - 1]
    }

    func state(of slot: DimensionSlot) -> DimensionSlot.State {
        slot.current(maxRegionSize: configuration.maxRegionSize) { error in
            logger.error("dimension \(slot.location.displayPath) is not served: \(error.description)")
        }
    }

    /// The generation and record a layer node id points to.
    func layer(_ node: NodeID) throws(FSError) -> (ServedGeneration, LayerRecord) {
        guard node.isLayer else { throw .notFound }
        let slot = try slot(node.slot)
        guard case .loaded(let served) = state(of: slot),
              let i = served.table.position(of: node.layerID) else { throw .notFound }
        let record = served.table.records[i]
        guard record.epoch == node.epoch else { throw .notFound }
        return (served, record)
    }

    // MARK: - Attributes

    func rootAttributes() -> Attributes {
        Attributes(inode: .root, kind: .directory, permissions: 0o555, links: UInt32(2 + slots.count - protoByName.count + (showsProto ? 1 : 0)),
                   size: 0, uid: baseStatus.uid, gid: baseStatus.gid, time: Timestamp(seconds: baseStatus.mtime))
    }

    func protoAttributes() -> Attributes {
        Attributes(inode: .protoDirectory, kind: .directory, permissions: 0o555, links: UInt32(2 + protoByName.count),
                   size: 0, uid: protoStatus.uid, gid: protoStatus.gid, time: Timestamp(seconds: protoStatus.mtime))
    }

    func dimensionAttributes(_ slot: DimensionSlot) -> Attributes {
        let inode = InodeNumber.dimension(key: slot.inodeKey)
        if case .loaded(let served) = state(of: slot) {
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

    /// LOOKUP: the node a name in a directory names.
    public func lookup(parent: NodeID, name: String) throws(FSError) -> Entry {
        if parent == .root {
            if let index = consciousnessByName[name] {
                let slot = try slot(index)
                return Entry(node: .dimension(slot: index), attributes: dimensionAttributes(slot))
            }
            if name == "proto" && showsProto { return Entry(node: .protoDirectory, attributes: protoAttributes()) }
            throw .notFound
        }
        if parent == .protoDirectory {
            guard let index = protoByName[name] else { throw .notFound }
            return Entry(node: .dimension(slot: index), attributes: dimensionAttributes(try slot(index)))
        }
        guard parent.isDimension else { throw parent.isLayer ? .notDirectory : .notFound }
        let slot = try slot(parent.slot)
        guard case .loaded(let served) = state(of: slot),
              let id = PackInput.layerID(fromName: name), PackInput.fileName(forLayer: id) == name,
              let i = served.table.position(of: id) else { throw .notFound }
        let record = served.table.records[i]
        return Entry(node: .layer(slot: slot.slot, epoch: record.epoch, id: record.id),
                     attributes: layerAttributes(slot, served, record))
    }

    /// GETATTR.
    public func attributes(_ node: NodeID) throws(FSError) -> Attributes {
        if node == .root { return rootAttributes() }
        if node == .protoDirectory { return protoAttributes() }
        if node.isDimension { return dimensionAttributes(try slot(node.slot)) }
        let (served, record) = try layer(node)
        return layerAttributes(try slot(node.slot), served, record)
    }

    /// READDIR / READDIRPLUS from position `offset` (0 = start). `emit` gets each entry and
    /// the offset of the next one; it returns false when the reply buffer is full.
    public func readDirectory(_ node: NodeID, from offset: Int, plus: Bool,
                              _ emit: (DirectoryEntry, Int) -> Bool) throws(FSError) {
        var position = offset
        // "." and ".." first; their attributes are the kernel's business, not handed out.
        let parentInode: InodeNumber
        if node == .root {
            parentInode = .root
        } else if node == .protoDirectory {
            parentInode = .root
        } else if node.isDimension {
            let slot = try slot(node.slot)
            if case .proto = slot.location.kind { parentInode = .protoDirectory } else { parentInode = .root }
        } else {
            throw .notDirectory
        }
        let selfInode = try attributes(node).inode
        for (name, inode) in [(".", selfInode), ("..", parentInode)].dropFirst(min(position, 2)) {
            position += 1
            if !emit(DirectoryEntry(name: name, inode: inode, kind: .directory, entry: nil), position) { return }
        }
        let first = position - 2
        if node == .root || node == .protoDirectory {
            var children: [(String, Int?)] = []
            if node == .root {
                children = slots.filter { if case .consciousness = $0.location.kind { return true } else { return false } }.map { ($0.location.name, $0.slot) }
                if showsProto { children.append(("proto", nil)) }
            } else {
                children = slots.filter { if case .proto = $0.location.kind { return true } else { return false } }.map { ($0.location.name, $0.slot) }
            }
            for (name, index) in children.dropFirst(first) {
                position += 1
                let entry: DirectoryEntry
                if let index {
                    let slot = slots[index - 1]
                    let inode = InodeNumber.dimension(key: slot.inodeKey)
                    // A loaded dimension comes with attributes; an unloaded one does not, so
                    // that listing the root never loads every index.
                    if plus, case .loaded = slot.peek {
                        entry = DirectoryEntry(name: name, inode: inode, kind: .directory,
                                               entry: Entry(node: .dimension(slot: index), attributes: dimensionAttributes(slot)))
                    } else {
                        entry = DirectoryEntry(name: name, inode: inode, kind: .directory, entry: nil)
                    }
                } else {
                    entry = DirectoryEntry(name: name, inode: .protoDirectory, kind: .directory,
                                           entry: plus ? Entry(node: .protoDirectory, attributes: protoAttributes()) : nil)
                }
                if !emit(entry, position) { return }
            }
            return
        }
        let slot = try slot(node.slot)
        guard case .loaded(let served) = state(of: slot) else { return }
        let records = served.table.records
        guard first < records.count else { return }
        for record in records[first...] {
            position += 1
            let attributes = layerAttributes(slot, served, record)
            let entry = DirectoryEntry(name: PackInput.fileName(forLayer: record.id), inode: attributes.inode, kind: .file,
                                       entry: plus ? Entry(node: .layer(slot: slot.slot, epoch: record.epoch, id: record.id), attributes: attributes) : nil)
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
        _ = try attributes(node)
        if node.isLayer { throw .notDirectory }
    }

    /// READ: calls `body` with the bytes [offset, offset + size) clipped to the layer, straight
    /// out of the mapping (no copy). The generation stays alive until `body` returns.
    public func read<R>(_ node: NodeID, offset: UInt64, size: Int, _ body: (UnsafeRawBufferPointer) -> R) throws(FSError) -> R {
        let (served, record) = try layer(node)
        guard offset < record.size else { return body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        let count = min(UInt64(size), record.size - offset)
        return withExtendedLifetime(served) {
            body(served.region.bytes(offset: record.offset + offset, count: count))
        }
    }

    /// STATFS: the volume's size (the regions' bytes) and layer count, nothing free.
    public func statistics() -> Statistics {
        var bytes: UInt64 = 0
        var files: UInt64 = UInt64(2 + slots.count)
        for slot in slots {
            var st = stat()
            if stat(slot.location.regionPath, &st) == 0 { bytes += UInt64(st.st_size) }
            if case .loaded(let served) = slot.peek { files += UInt64(served.table.records.count) }
        }
        return Statistics(blocks: (bytes + 4095) / 4096, files: files)
    }
}
