import Crypto
import Glibc
import LayerFormat

/// Metadata changes on a writable mount: SETXATTR of the spec's `user.*` attributes, and
/// utimens. They change the index only (no byte is copied) and are committed like the bytes.
///
/// - Layers: `user.keywords`, `user.frequency` set the index fields; mtime sets `updated_at`.
///   `user.checksum` is accepted only equal to the SHA-256 of the current bytes, `user.layer_id`
///   only equal to the id the name gives (a scratch file takes any: its id is its next name's).
/// - Dimension directories: `user.dimension_name`, `user.created_at`, and `user.updated_at` or
///   mtime (the index's `updated_at`); `user.dimension_id` only equal; `user.layer_count` and
///   `user.generation` only equal to the value once what is staged is committed.
/// - Anything else in `user.`: EOPNOTSUPP (the filesystem has no such attribute).
struct DimensionMetadata {
    var keywords: [UInt32: [String]] = [:]
    var frequencies: [UInt32: Double] = [:]
    var times: [UInt32: Timestamp] = [:]
    var name: String?
    var createdAt: Timestamp?
    var updatedAt: Timestamp?

    var isEmpty: Bool {
        keywords.isEmpty && frequencies.isEmpty && times.isEmpty && name == nil && createdAt == nil && updatedAt == nil
    }

    mutating func drop(_ id: UInt32) {
        keywords[id] = nil
        frequencies[id] = nil
        times[id] = nil
    }
}

extension FileSystem {
    /// SETXATTR on a writable mount.
    public func setExtendedAttribute(_ node: NodeID, name: String, value: [UInt8]) throws(FSError) {
        try requireWritable()
        guard name.hasPrefix("user.") else {
            _ = try attributes(node)
            throw .notSupported
        }
        guard let text = String(validating: value, as: UTF8.self) else { throw .invalid }
        if node == .root || node == .protoDirectory { throw .notSupported }
        if node.isDimension { return try setDimensionAttribute(try dimension(node), node, name, text) }
        try setLayerAttribute(node, name, text)
    }

    /// REMOVEXATTR: keywords and frequency go back to the format's defaults; the others cannot go.
    public func removeExtendedAttribute(_ node: NodeID, name: String) throws(FSError) {
        switch name {
        case "user.keywords": try setExtendedAttribute(node, name: name, value: [])
        case "user.frequency": try setExtendedAttribute(node, name: name, value: Array("1.0".utf8))
        default:
            try requireWritable()
            _ = try attributes(node)
            throw name.hasPrefix("user.") ? .invalid : .notSupported
        }
    }

    func setLayerAttribute(_ node: NodeID, _ name: String, _ text: String) throws(FSError) {
        let staged = stagedFile(node)
        let slot: DimensionSlot
        if let staged { slot = staged.slot } else { slot = try self.slot(node.slot) }
        let stagedName = staging.state.withLock { _ in staged?.name }
        let id: UInt32? = if let staged { stagedName.flatMap { PackInput.layerID(fromName: $0) } ?? (staged.node == node ? nil : node.layerID) } else { node.layerID }
        switch name {
        case "user.keywords":
            let list = Keywords.split(text)
            if Keywords.limitProblem(list) != nil { throw .invalid }
            if try currentValue(node, name) == text { return }
            try record(slot, staged, id) { $0.keywords = list } served: { $0.keywords[$1] = list }
        case "user.frequency":
            guard let value = Frequency.parse(text), value.isFinite else { throw .invalid }
            if let current = try currentValue(node, name), Frequency.parse(current) == value { return }
            try record(slot, staged, id) { $0.frequency = value } served: { $0.frequencies[$1] = value }
        case "user.checksum":
            // A new, still empty file takes the value its bytes will have: tar sets a file's
            // attributes before it writes the bytes. The commit logs a claim that did not hold.
            if let staged, staging.state.withLock({ _ in staged.size == 0 && staged.version <= 1 }), text.hasPrefix("sha256:") {
                staging.state.withLock { _ in staged.claimedChecksum = text }
                return
            }
            guard try currentChecksum(node, staged).checksumString == text else {
                logger.warning("setxattr user.checksum \(text): refused (EINVAL): not the SHA-256 of the layer's bytes")
                throw .invalid
            }
        case "user.layer_id":
            // A scratch file becomes whichever layer it is renamed to.
            if let id, String(id) != text { throw .invalid }
            if id == nil && (UInt32(text) ?? 0) == 0 { throw .invalid }
        default:
            throw .notSupported
        }
    }

    /// A layer attribute's value as getxattr shows it now (pending changes included).
    func currentValue(_ node: NodeID, _ name: String) throws(FSError) -> String? {
        try attributeValues(node).first { $0.0 == name }?.1
    }

    func currentChecksum(_ node: NodeID, _ staged: StagedFile?) throws(FSError) -> Digest256 {
        if let staged { return try stagedDigest(staged) }
        return try layer(node).1.checksum
    }

    func stagedDigest(_ file: StagedFile) throws(FSError) -> Digest256 {
        var hasher = SHA256()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { buffer.deallocate() }
        var offset: off_t = 0
        while true {
            let n = pread(file.fd, buffer.baseAddress, buffer.count, offset)
            if n < 0 { throw .io }
            if n == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            offset += off_t(n)
        }
        return Digest256(hasher.finalize())
    }

    /// Records a metadata change on the staged file, or for a served layer in the slot's
    /// pending metadata, and schedules the commit.
    private func record(_ slot: DimensionSlot, _ staged: StagedFile?, _ id: UInt32?,
                        file: (StagedFile) -> Void, served: (inout DimensionMetadata, UInt32) -> Void) throws(FSError) {
        staging.state.withLock { s in
            if let staged {
                file(staged)
                staged.version += 1
            } else if let id {
                served(&s.metadata[slot.slot, default: DimensionMetadata()], id)
            }
        }
        if staged == nil || staging.state.withLock({ _ in staged?.writableHandles == 0 && staged?.name.map { !Staging.isScratchName($0) } ?? false }) {
            scheduleCommit(slot)
        }
    }

    func setDimensionAttribute(_ slot: DimensionSlot, _ node: NodeID, _ name: String, _ text: String) throws(FSError) {
        let current = try attributeValues(node).first { $0.0 == name }?.1
        if current == text { return }
        switch name {
        case "user.dimension_name":
            guard !text.isEmpty else { throw .invalid }
            staging.state.withLock { $0.metadata[slot.slot, default: DimensionMetadata()].name = text }
            scheduleCommit(slot)
        case "user.created_at", "user.updated_at":
            guard let time = Timestamp(rfc3339: text) else { throw .invalid }
            staging.state.withLock { s in
                if name == "user.created_at" { s.metadata[slot.slot, default: DimensionMetadata()].createdAt = time } else { s.metadata[slot.slot, default: DimensionMetadata()].updatedAt = time }
            }
            scheduleCommit(slot)
        case "user.layer_count", "user.generation":
            // A dimension with no layers yet takes any: a restore (rsync -X, tar --xattrs) sets
            // a directory's attributes before it copies the layers that will give them.
            if try attributeValues(node).first(where: { $0.0 == "user.layer_count" })?.1 == "0" { return }
            // The value it will have: what is staged is committed first, then compared.
            try commit(slot, includingOpen: false)
            if try attributeValues(node).first(where: { $0.0 == name })?.1 != text {
                logger.warning("setxattr \(name) \(text) on \(slot.location.displayPath): refused (EINVAL): the dimension's is \(current ?? "unset")")
                throw .invalid
            }
        case "user.dimension_id", "user.error":
            throw .invalid
        default:
            throw .notSupported
        }
    }

    /// utimens of a layer (its `updated_at`) or a dimension directory (the index's).
    func setModified(_ node: NodeID, _ seconds: Int64) throws(FSError) {
        let time = Timestamp(seconds: seconds)
        if node == .root || node == .protoDirectory {
            // Not an index: the volume's own directory takes it, so rsync finds it in place.
            // UTIME_OMIT ((1 << 30) - 2, a macro Swift does not import) leaves atime alone.
            var times = [timespec(tv_sec: 0, tv_nsec: (1 << 30) - 2), timespec(tv_sec: time_t(seconds), tv_nsec: 0)]
            let path = node == .root ? configuration.base : volume.protoDirectory
            // proto/ is shown on a writable mount before it exists.
            if node == .protoDirectory && access(path, F_OK) != 0 { _ = mkdir(path, 0o755) }
            if utimensat(AT_FDCWD, path, &times, 0) != 0 { throw FSError(errno: errno) }
            return
        }
        if node.isDimension {
            let slot = try dimension(node)
            if try attributes(node).time == time { return }
            // A dimension without files has no index to carry the time: its directory takes it.
            let hasFiles = access(slot.location.indexPath, F_OK) == 0
            let pending = staging.state.withLock { s in s.byName.keys.contains { $0.slot == slot.slot } || !(s.metadata[slot.slot]?.isEmpty ?? true) }
            if !hasFiles && !pending {
                var times = [timespec(tv_sec: 0, tv_nsec: (1 << 30) - 2), timespec(tv_sec: time_t(seconds), tv_nsec: 0)]
                if utimensat(AT_FDCWD, slot.location.directory, &times, 0) != 0 { throw FSError(errno: errno) }
                return
            }
            staging.state.withLock { $0.metadata[slot.slot, default: DimensionMetadata()].updatedAt = time }
            scheduleCommit(slot)
            return
        }
        if let file = stagedFile(node) {
            let schedule = staging.state.withLock { _ -> Bool in
                file.modified = seconds
                file.timeSet = true
                file.version += 1
                return file.writableHandles == 0 && file.name.map { !Staging.isScratchName($0) } ?? false
            }
            if schedule { scheduleCommit(file.slot) }
            return
        }
        let (_, record, _) = try layer(node)
        if record.updatedAt == seconds { return }
        let slot = try slot(node.slot)
        staging.state.withLock { $0.metadata[slot.slot, default: DimensionMetadata()].times[record.id] = time }
        scheduleCommit(slot)
    }

    /// Pending metadata shown by getxattr before its commit: (name, value) pairs over the
    /// served ones.
    func pendingLayerValues(_ slot: Int, _ id: UInt32) -> [String: String] {
        staging.state.withLock { s in
            var out: [String: String] = [:]
            if let list = s.metadata[slot]?.keywords[id] { out["user.keywords"] = Keywords.join(list) }
            if let value = s.metadata[slot]?.frequencies[id] { out["user.frequency"] = Frequency.format(value) }
            return out
        }
    }

    /// A time set by utimens and not committed yet: what stat shows meanwhile.
    func pendingLayerTime(_ slot: Int, _ id: UInt32) -> Timestamp? {
        staging.state.withLock { $0.metadata[slot]?.times[id] }
    }

    func pendingDimensionTime(_ slot: Int) -> Timestamp? {
        staging.state.withLock { $0.metadata[slot]?.updatedAt }
    }

    func pendingDimensionValues(_ slot: Int) -> [String: String] {
        staging.state.withLock { s in
            var out: [String: String] = [:]
            guard let m = s.metadata[slot] else { return out }
            if let name = m.name { out["user.dimension_name"] = name }
            if let t = m.createdAt { out["user.created_at"] = t.rfc3339 }
            if let t = m.updatedAt { out["user.updated_at"] = t.rfc3339 }
            return out
        }
    }

    /// getxattr of a staged file: its id (if it has a layer's name), its checksum, and the
    /// keywords and frequency it will be committed with.
    func stagedAttributeValues(_ file: StagedFile) throws(FSError) -> [(String, String)] {
        let (name, keywords, frequency) = staging.state.withLock { _ in (file.name, file.keywords, file.frequency) }
        let id = name.flatMap { PackInput.layerID(fromName: $0) } ?? file.borrowedNodes.first?.layerID
        var previous: (keywords: String, frequency: Double)?
        if let id {
            previous = try? withLoadedState(file.slot) { state -> (String, Double)? in
                guard let served = state.served, let i = served.table.position(of: id) else { return nil }
                let record = served.table.records[i]
                return (String(decoding: served.table.keywords(of: record), as: UTF8.self), record.frequency)
            }
        }
        var out = [("user.checksum", try stagedDigest(file).checksumString)]
        if let id { out.append(("user.layer_id", String(id))) }
        out.append(("user.frequency", Frequency.format(frequency ?? previous?.frequency ?? 1.0)))
        out.append(("user.keywords", keywords.map(Keywords.join) ?? previous?.keywords ?? ""))
        return out
    }
}
