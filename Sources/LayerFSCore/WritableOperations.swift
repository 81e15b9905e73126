import CLinux
import Glibc
import LayerFormat

/// The operations that change a writable mount, as plain methods. Bytes go to a `StagedFile`;
/// they become a generation when `commit` runs (see StagingCommit.swift). Names: a layer only
/// under its canonical name (`layer-001`, `layer-1000`), scratch files under hidden names.
extension FileSystem {
    /// What a name in a dimension may be: a layer's canonical name, or a scratch file.
    enum WritableName {
        case layer(UInt32)
        case scratch
    }

    func writableName(_ name: String, in slot: DimensionSlot) throws(FSError) -> WritableName {
        if let id = PackInput.layerID(fromName: name), PackInput.fileName(forLayer: id) == name { return .layer(id) }
        if Staging.isScratchName(name) { return .scratch }
        logger.warning("\(slot.location.displayPath)/\(name): refused (EINVAL): a dimension holds layers named layer-NNN (layer-001, layer-1000: at least three digits, no other leading zeros) and hidden scratch files (a leading '.')")
        throw .invalid
    }

    func requireWritable() throws(FSError) {
        if !isWritable { throw .readOnly }
    }

    /// A new staged file named `name` in `slot`, bound to that name (replacing whatever staged
    /// file had it), with the first `count` bytes of `source` at `offset` copied in.
    func makeStaged(_ slot: DimensionSlot, name: String, copying source: (fd: Int32, offset: UInt64, count: UInt64)?) throws(FSError) -> StagedFile {
        let temp = configuration.base + "/temp"
        if access(temp, F_OK) != 0 { _ = mkdir(temp, 0o700) }
        guard let fd = StagedFile.makeFile(in: temp) else {
            logger.error("cannot create a staging file in \(temp): \(String(cString: strerror(errno)))")
            throw FSError(errno: errno)
        }
        let node = staging.state.withLock { s -> NodeID in
            defer { s.nextNode += 1 }
            return NodeID(rawValue: s.nextNode)
        }
        let file = StagedFile(fd: fd, slot: slot, node: node, name: name)
        if let source, source.count > 0 {
            var done: UInt64 = 0
            while done < source.count {
                var from = Int64(source.offset + done), to = Int64(done)
                var n = Int(layerfs_copy_file_range(source.fd, &from, fd, &to, Int(min(source.count - done, 1 << 30))))
                if n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP) {
                    n = try copyByReadWrite(from: source.fd, at: source.offset + done, to: fd, at: done, count: min(source.count - done, 1 << 20))
                }
                if n < 0 { throw FSError(errno: errno) }
                if n == 0 { throw .io }
                done += UInt64(n)
            }
            file.size = source.count
        }
        return file
    }

    private func copyByReadWrite(from: Int32, at: UInt64, to: Int32, at target: UInt64, count: UInt64) throws(FSError) -> Int {
        var buffer = [UInt8](repeating: 0, count: Int(count))
        let n = buffer.withUnsafeMutableBytes { pread(from, $0.baseAddress, $0.count, off_t(at)) }
        if n <= 0 { return n }
        let w = buffer.withUnsafeBytes { pwrite(to, $0.baseAddress, n, off_t(target)) }
        return w
    }

    /// Binds `file` under its name and registers its node; the caller holds the lock.
    static func bind(_ file: StagedFile, in s: inout Staging.State) {
        guard let name = file.name else { return }
        let key = Staging.NameKey(slot: file.slot.slot, name: name)
        if let old = s.byName[key], old !== file {
            old.name = nil
            old.releasedName = nil
            Staging.collect(old, in: &s)
        }
        s.byName[key] = file
        s.byNode[file.node.rawValue] = file
        if let id = PackInput.layerID(fromName: name) { s.deletions[file.slot.slot]?.remove(id) }
    }

    /// A file written after its commit let go of its name is pending under that name again
    /// (replacing whatever staged file took the name since: the last writer wins).
    static func reclaimName(_ file: StagedFile, in s: inout Staging.State) {
        guard file.name == nil, let name = file.releasedName else { return }
        file.name = name
        file.releasedName = nil
        bind(file, in: &s)
    }

    func newHandle(_ file: StagedFile?, writable: Bool, in s: inout Staging.State) -> UInt64 {
        let h = s.nextHandle
        s.nextHandle += 1
        s.handles[h] = Staging.Handle(file: file, writable: writable)
        if let file {
            file.handles += 1
            if writable { file.writableHandles += 1 }
        }
        return h
    }

    // MARK: - OPEN, CREATE

    /// OPEN on a writable mount: a handle. Opening a served layer for writing copies its bytes
    /// into a staged file first (copy on write); O_TRUNC starts it empty.
    public func openHandle(_ node: NodeID, flags: Int32) throws(FSError) -> UInt64 {
        let writing = flags & O_ACCMODE != O_RDONLY || flags & O_TRUNC != 0
        if node.isDimension || node == .root || node == .protoDirectory { throw .isDirectory }
        if let file = stagedFile(node) {
            return file.gate.withShared { staging.state.withLock { s in
                if writing && flags & O_TRUNC != 0 && file.size != 0 {
                    _ = ftruncate(file.fd, 0)
                    file.size = 0
                    file.version += 1
                }
                if writing { Self.reclaimName(file, in: &s) }
                return newHandle(file, writable: writing, in: &s)
            } }
        }
        if Staging.isStagedNode(node) { throw .notFound }
        let (served, record, _) = try layer(node)
        guard writing else { return staging.state.withLock { newHandle(nil, writable: false, in: &$0) } }
        let slot = try slot(node.slot)
        let name = PackInput.fileName(forLayer: record.id)
        // A second writer of the same layer through another node shares the staged file.
        if let existing = staging.state.withLock({ $0.byName[Staging.NameKey(slot: slot.slot, name: name)] }) {
            return staging.state.withLock { s in
                existing.borrowedNodes.append(node)
                s.byNode[node.rawValue] = existing
                return newHandle(existing, writable: true, in: &s)
            }
        }
        let copy = flags & O_TRUNC != 0 ? nil : (fd: served.region.fd, offset: record.offset, count: record.size)
        let file = try makeStaged(slot, name: name, copying: copy)
        file.modified = record.updatedAt
        if copy == nil { file.version = 1 }
        return staging.state.withLock { s in
            Self.bind(file, in: &s)
            file.borrowedNodes.append(node)
            s.byNode[node.rawValue] = file
            return newHandle(file, writable: true, in: &s)
        }
    }

    /// CREATE: a new layer (canonical name) or scratch file, empty, open for writing.
    public func create(parent: NodeID, name: String, flags: Int32) throws(FSError) -> (Entry, UInt64) {
        try requireWritable()
        let slot = try dimension(parent)
        switch try writableName(name, in: slot) {
        case .layer, .scratch: break
        }
        let staged = staging.state.withLock { $0.byName[Staging.NameKey(slot: slot.slot, name: name)] }
        let deleted = staging.state.withLock { s in PackInput.layerID(fromName: name).map { s.deletions[slot.slot]?.contains($0) ?? false } ?? false }
        if staged != nil || (!deleted && (try? lookupServed(slot, parent, name)) != nil) {
            // The kernel asks CREATE only for a name it believes absent; someone else made it.
            throw .exists
        }
        let file = try makeStaged(slot, name: name, copying: nil)
        file.version = 1
        let h = staging.state.withLock { s in
            Self.bind(file, in: &s)
            file.lookups += 1
            return newHandle(file, writable: true, in: &s)
        }
        return (Entry(node: file.node, generation: 0, attributes: stagedAttributes(file)), h)
    }

    /// A served layer's entry without counting a lookup (existence checks).
    func lookupServed(_ slot: DimensionSlot, _ parent: NodeID, _ name: String) throws(FSError) -> LayerRecord {
        guard let id = PackInput.layerID(fromName: name), PackInput.fileName(forLayer: id) == name else { throw .notFound }
        return try withLoadedState(slot) { (state) throws(FSError) -> LayerRecord in
            guard state.isCurrentDirectory(parent), let served = state.served, let i = served.table.position(of: id) else { throw .notFound }
            return served.table.records[i]
        }
    }

    // MARK: - WRITE, SETATTR

    func writableFile(_ node: NodeID, handle: UInt64) throws(FSError) -> StagedFile {
        try staging.state.withLock { (s) throws(FSError) -> StagedFile in
            guard let h = s.handles[handle], h.writable, let file = h.file else { throw .badHandle }
            return file
        }
    }

    /// WRITE: the bytes go to the staged file at once; readers of this mount see them.
    public func write(_ node: NodeID, handle: UInt64, offset: UInt64, bytes: UnsafeRawBufferPointer) throws(FSError) -> Int {
        let file = try writableFile(node, handle: handle)
        if let limit = configuration.maxRegionSize, offset + UInt64(bytes.count) > limit { throw .tooLarge }
        // Shared with other writes, excluded while a commit copies this file's bytes.
        return try file.gate.withShared { () throws(FSError) -> Int in
            let n = pwrite(file.fd, bytes.baseAddress, bytes.count, off_t(offset))
            if n < 0 { throw FSError(errno: errno) }
            staging.state.withLock { s in
                file.size = max(file.size, offset + UInt64(n))
                file.version += 1
                file.modified = Int64(time(nil))
                Self.reclaimName(file, in: &s)
            }
            return n
        }
    }

    /// SETATTR: size (truncate; copy on write for a served layer), times (a staged file's
    /// mtime; a served layer's updated_at is the commit's). Mode and owner: EPERM.
    public func setAttributes(_ node: NodeID, handle: UInt64?, size: UInt64?, modified: Int64?,
                              mode: UInt32?, uid: UInt32?, gid: UInt32?) throws(FSError) -> Attributes {
        try requireWritable()
        // Owners and modes are the volume's files' (or the mount's options'): a chmod or chown
        // to what is shown already succeeds (cp -a, rsync -a, tar set them on every file), any
        // other is EPERM.
        // A scratch file is no layer: its mode and owner are not kept, so any is accepted
        // (rsync's mkstemp makes it 0600 first).
        let scratch = stagedFile(node).map { f in staging.state.withLock { _ in f.name.map(Staging.isScratchName) ?? true } } ?? false
        if !scratch && (mode != nil || uid != nil || gid != nil) {
            let shown = try attributes(node)
            if let mode, mode & 0o7777 != shown.permissions { throw .permission }
            if let uid, uid != shown.uid { throw .permission }
            if let gid, gid != shown.gid { throw .permission }
        }
        if node.isDimension || node == .root || node == .protoDirectory {
            if size != nil { throw .isDirectory }
            if let modified { try setModified(node, modified) }
            return try attributes(node)
        }
        if let size {
            if let limit = configuration.maxRegionSize, size > limit { throw .tooLarge }
            var file = stagedFile(node)
            if file == nil {
                // truncate(1) of a served layer: copy on write through a short-lived handle.
                let h = try openHandle(node, flags: size == 0 ? O_WRONLY | O_TRUNC : O_WRONLY)
                file = try writableFile(node, handle: h)
                release(handle: h)
            }
            guard let file else { throw .notFound }
            try file.gate.withShared { () throws(FSError) in
                if ftruncate(file.fd, off_t(size)) != 0 { throw FSError(errno: errno) }
                staging.state.withLock { s in
                    file.size = size
                    file.version += 1
                    file.modified = Int64(time(nil))
                    Self.reclaimName(file, in: &s)
                }
            }
            if staging.state.withLock({ _ in file.writableHandles == 0 }) { scheduleCommit(file.slot) }
        }
        if let modified { try setModified(node, modified) }
        return try attributes(node)
    }

    // MARK: - FLUSH, RELEASE, FSYNC

    /// FLUSH (each close of a descriptor): schedules the commit of a file whose last writer
    /// closes; answers the dimension's last failed commit, if any, so close reports it.
    public func flush(handle: UInt64) throws(FSError) {
        guard isWritable else { return }
        let (file, failure) = staging.state.withLock { s -> (StagedFile?, FSError?) in
            guard let h = s.handles[handle], h.writable, let file = h.file else { return (nil, nil) }
            return (file, s.failures[file.slot.slot])
        }
        guard let file else { return }
        if staging.state.withLock({ _ in file.isDirty && file.name != nil }) { scheduleCommit(file.slot) }
        if let failure { throw failure }
    }

    /// RELEASE: the handle goes; the last writable one of a changed file schedules a commit.
    public func release(handle: UInt64) {
        guard isWritable else { return }
        let file = staging.state.withLock { s -> StagedFile? in
            guard let h = s.handles.removeValue(forKey: handle), let file = h.file else { return nil }
            file.handles -= 1
            if h.writable { file.writableHandles -= 1 }
            let pending = h.writable && file.writableHandles == 0 && file.isDirty && file.name != nil
            Staging.collect(file, in: &s)
            return pending ? file : nil
        }
        if let file { scheduleCommit(file.slot) }
    }

    /// FSYNC / FDATASYNC: the file's dimension commits now, this file included even if still
    /// open; returns once the new generation is durable, or the commit's error.
    public func fsync(_ node: NodeID, handle: UInt64?) throws(FSError) {
        guard isWritable else { return }
        guard let file = stagedFile(node) else { return }
        try commit(file.slot, including: [ObjectIdentifier(file)])
    }

    /// FSYNCDIR of a dimension: everything staged in it commits now.
    public func fsyncDirectory(_ node: NodeID) throws(FSError) {
        guard isWritable else { return }
        // The root or proto/: every dimension (what `layerfs unmount` asks before unmounting).
        if node == .root || node == .protoDirectory { return try commitEverything() }
        guard node.isDimension else { return }
        try commit(try dimension(node), includingOpen: true)
    }

    // MARK: - UNLINK, RENAME

    /// UNLINK: a layer is deleted at the next commit; a scratch file goes at once.
    public func unlink(parent: NodeID, name: String) throws(FSError) {
        try requireWritable()
        let slot = try dimension(parent)
        let kind = try writableName(name, in: slot)
        let staged = staging.state.withLock { $0.byName[Staging.NameKey(slot: slot.slot, name: name)] }
        var served = false
        if case .layer = kind { served = (try? lookupServed(slot, parent, name)) != nil }
        guard staged != nil || served else { throw .notFound }
        staging.state.withLock { s in
            if let staged {
                s.byName[Staging.NameKey(slot: slot.slot, name: name)] = nil
                staged.name = nil
                staged.releasedName = nil
                Staging.collect(staged, in: &s)
            }
            if served, case .layer(let id) = kind { s.deletions[slot.slot, default: []].insert(id) }
        }
        if served { scheduleCommit(slot) }
    }

    /// RENAME within a dimension: a scratch file renamed to a layer name becomes that layer; a
    /// layer renamed changes its id (its bytes are staged under the new name, the old id is
    /// deleted). Across dimensions: EXDEV. `flags`: RENAME_NOREPLACE (1), RENAME_EXCHANGE (2).
    public func rename(parent: NodeID, name: String, newParent: NodeID, newName: String, flags: UInt32) throws(FSError) {
        try requireWritable()
        if parent.isDimension != newParent.isDimension || !parent.isDimension {
            throw parent.isDimension || newParent.isDimension ? .crossDevice : .permission
        }
        let slot = try dimension(parent)
        if newParent != parent { _ = try dimension(newParent); throw .crossDevice }
        let fromKind = try writableName(name, in: slot)
        let toKind = try writableName(newName, in: slot)
        if name == newName { return }
        // Only a layer the dimension has is deleted by the commit; a staged new one just moves.
        let fromServed = (try? lookupServed(slot, parent, name)) != nil
        let from = try materialize(slot, parent, name, fromKind)
        guard let from else { throw .notFound }
        // Whether the target exists, without copying its bytes: only an exchange needs them.
        let targetStaged = staging.state.withLock { $0.byName[Staging.NameKey(slot: slot.slot, name: newName)] }
        let targetDeleted = staging.state.withLock { s in PackInput.layerID(fromName: newName).map { s.deletions[slot.slot]?.contains($0) ?? false } ?? false }
        let targetExists = targetStaged != nil || (!targetDeleted && (try? lookupServed(slot, parent, newName)) != nil)
        let noReplace = flags & 1 != 0, exchange = flags & 2 != 0
        if noReplace && targetExists { throw .exists }
        if exchange && !targetExists { throw .notFound }
        let toExists = exchange ? try materialize(slot, parent, newName, toKind) : targetStaged
        staging.state.withLock { s in
            s.byName[Staging.NameKey(slot: slot.slot, name: name)] = nil
            if exchange, let other = toExists {
                s.byName[Staging.NameKey(slot: slot.slot, name: newName)] = nil
                other.name = name
                other.version += 1
                Self.bind(other, in: &s)
            } else if fromServed, case .layer(let id) = fromKind {
                s.deletions[slot.slot, default: []].insert(id)
            }
            from.name = newName
            from.version += 1
            Self.bind(from, in: &s)
            if !exchange, let other = toExists, other !== from {
                other.name = nil
                Staging.collect(other, in: &s)
            }
        }
        if case .layer = toKind { scheduleCommit(slot) } else if case .layer = fromKind { scheduleCommit(slot) }
    }

    /// The staged file under `name`, staging a served layer's bytes if it is not staged yet;
    /// nil when the name does not exist.
    func materialize(_ slot: DimensionSlot, _ parent: NodeID, _ name: String, _ kind: WritableName) throws(FSError) -> StagedFile? {
        if let file = staging.state.withLock({ $0.byName[Staging.NameKey(slot: slot.slot, name: name)] }) { return file }
        guard case .layer(let id) = kind else { return nil }
        if staging.state.withLock({ $0.deletions[slot.slot]?.contains(id) ?? false }) { return nil }
        let found = try withLoadedState(slot) { (state) throws(FSError) -> (ServedGeneration, LayerRecord)? in
            guard state.isCurrentDirectory(parent), let served = state.served, let i = served.table.position(of: id) else { return nil }
            return (served, served.table.records[i])
        }
        guard let (served, record) = found else { return nil }
        let file = try makeStaged(slot, name: name, copying: (fd: served.region.fd, offset: record.offset, count: record.size))
        file.modified = record.updatedAt
        file.version = 1
        staging.state.withLock { s in Self.bind(file, in: &s) }
        return file
    }
}

