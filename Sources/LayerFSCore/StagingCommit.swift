import Dispatch
import Glibc
import LayerFormat

/// Turning a dimension's staged changes into a generation: through `DimensionUpdate`, the
/// engine of `layerfs update` (writer lock, rebased on the generation current under it, the
/// spec's swap), then the dimension is refreshed at once, exactly as the watcher would, so the
/// new generation is installed by the one path that installs generations.
extension FileSystem {
    /// How long closes are gathered before a commit starts. Short, because batching mostly
    /// happens on its own: commits run one at a time, and everything closed while one runs
    /// goes into the next (group commit). 10 ms gathers a sequential `cp -r`'s next few
    /// closes at a small cost in latency (the time until other mounts see a layer).
    static let commitBatchDelay = DispatchTimeInterval.milliseconds(10)

    /// A commit of `slot` in `commitBatchDelay`, unless one is already pending.
    func scheduleCommit(_ slot: DimensionSlot) {
        let fresh = staging.state.withLock { $0.scheduled.insert(slot.slot).inserted }
        guard fresh else { return }
        DispatchQueue.global().asyncAfter(deadline: .now() + Self.commitBatchDelay) { [self] in
            let finished = staging.state.withLock { s in
                s.scheduled.remove(slot.slot)
                return s.finished
            }
            // The unmount committed everything already; the volume may be gone by now.
            if finished { return }
            // Logged and kept for the next flush/fsync by `commit` itself.
            try? commit(slot, includingOpen: false)
        }
    }

    /// Commits `slot`'s pending changes: files no longer open for writing (or all of them with
    /// `includingOpen`, or those in `including`), and deletions.
    func commit(_ slot: DimensionSlot, including: Set<ObjectIdentifier> = [], includingOpen: Bool = false) throws(FSError) {
        try staging.commitLock.withLock { (_) throws(FSError) in
            try commitLocked(slot, including: including, includingOpen: includingOpen)
        }
    }

    /// Commits everything staged on every dimension: the end of a clean unmount.
    public func finishWrites() {
        do throws(FSError) { try commitEverything() } catch {}
        // Held by the commit lock, so no commit is running once this returns.
        staging.commitLock.withLock { _ in staging.state.withLock { $0.finished = true } }
    }

    /// Commits every dimension with something staged; the first failure is thrown once all
    /// were tried (each is logged).
    func commitEverything() throws(FSError) {
        guard isWritable else { return }
        var first: FSError?
        let slots = staging.state.withLock { s in
            Set(s.byName.values.map(\.slot.slot)).union(s.deletions.filter { !$0.value.isEmpty }.keys).union(s.metadata.keys)
        }
        for index in slots.sorted() {
            guard let slot = try? slot(index) else { continue }
            do throws(FSError) {
                try commit(slot, includingOpen: true)
            } catch {
                first = first ?? error
            }
        }
        if let first { throw first }
    }

    private struct Snapshot {
        var file: StagedFile
        var id: UInt32
        var version: UInt64
        var content: LayerContent
    }

    private func commitLocked(_ slot: DimensionSlot, including: Set<ObjectIdentifier>, includingOpen: Bool) throws(FSError) {
        // What to write, as it is now. Files are read outside the lock: a write arriving during
        // the commit bumps the file's version, so it stays pending for the next one.
        // Which files, then their gates (writes to them wait until the generation is written,
        // so the bytes committed are one moment's), then their sizes and versions.
        let chosen = staging.state.withLock { s -> [(StagedFile, UInt32, String)] in
            var out: [(StagedFile, UInt32, String)] = []
            for (key, file) in s.byName where key.slot == slot.slot && file.isDirty {
                guard let id = PackInput.layerID(fromName: key.name), PackInput.fileName(forLayer: id) == key.name else { continue }
                guard includingOpen || file.writableHandles == 0 || including.contains(ObjectIdentifier(file)) else { continue }
                out.append((file, id, key.name))
            }
            return out
        }
        for (file, _, _) in chosen { file.gate.close() }
        defer { for (file, _, _) in chosen { file.gate.open() } }
        let (snapshots, deletions, metadata) = staging.state.withLock { s -> ([Snapshot], Set<UInt32>, DimensionMetadata) in
            var out: [Snapshot] = []
            for (file, id, name) in chosen where file.name == name {
                guard let content = LayerContent.descriptor(file.fd, size: file.size, display: "staged " + name) else { continue }
                out.append(Snapshot(file: file, id: id, version: file.version, content: content))
            }
            return (out, s.deletions[slot.slot] ?? [], s.metadata[slot.slot] ?? DimensionMetadata())
        }
        if snapshots.isEmpty && deletions.isEmpty && metadata.isEmpty { return }
        // Metadata of a layer this commit puts goes with the put (the file's own wins); of a
        // layer it deletes, nowhere.
        var keywords = metadata.keywords, frequencies = metadata.frequencies, times = metadata.times
        for id in deletions { keywords[id] = nil; frequencies[id] = nil; times[id] = nil }
        for snap in snapshots {
            let file = snap.file
            if let list = file.keywords { keywords[snap.id] = list }
            if let value = file.frequency { frequencies[snap.id] = value }
            if file.timeSet { times[snap.id] = Timestamp(seconds: file.modified) } else { times[snap.id] = nil }
        }
        var changes = snapshots.map { DimensionUpdate.Change(.put($0.id, $0.content)) }
        changes += deletions.sorted().map { DimensionUpdate.Change(.delete($0)) }
        changes += keywords.sorted { $0.key < $1.key }.map { DimensionUpdate.Change(.keywords($0.key, $0.value)) }
        changes += frequencies.sorted { $0.key < $1.key }.map { DimensionUpdate.Change(.frequency($0.key, $0.value)) }
        // The index's updated_at: as set (utimens, user.updated_at), else now; but a change of
        // the name or created_at alone keeps the current one, so that a restore that sets the
        // directory's time before its other attributes (cp -a) keeps the time it set.
        var indexTime = metadata.updatedAt ?? Timestamp(seconds: Int64(time(nil)))
        if metadata.updatedAt == nil && changes.isEmpty && times.isEmpty, let current = slot.withState({ $0.served?.updatedAt }) {
            indexTime = current
        }
        var options = DimensionUpdate.Options(time: indexTime)
        options.maxRegionSize = configuration.maxRegionSize
        options.wait = configuration.commitLockWait
        do throws(UpdateError) {
            // A new index time alone is a "rename" to the current name: the engine then writes
            // the index (linking the region) with the new updated_at.
            var name = metadata.name
            if name == nil && changes.isEmpty && times.isEmpty && metadata.createdAt == nil && metadata.updatedAt != nil {
                name = slot.withState { $0.served?.name } ?? slot.location.defaultDimensionName
            }
            _ = try DimensionUpdate(changes, dimensionName: name, layerTimes: times, createdAt: metadata.createdAt)
                .commit(into: slot.location, options: options)
        } catch .absent(let id, _, _, _) {
            // Another producer deleted it first: the deletion is done, its metadata moot.
            staging.state.withLock { s in
                _ = s.deletions[slot.slot]?.remove(id)
                s.metadata[slot.slot]?.drop(id)
            }
            return try commitLocked(slot, including: including, includingOpen: includingOpen)
        } catch {
            let failure = FileSystem.commitErrno(error)
            // A file written during the commit (its size changed under the copy): not the
            // commit's fault; it runs again with the bytes as they are then.
            let raced = staging.state.withLock { s -> Bool in
                s.failures[slot.slot] = failure
                return snapshots.contains { $0.file.version != $0.version }
            }
            if raced { scheduleCommit(slot) }
            logger.error("\(slot.location.displayPath): commit of \(changes.count) staged changes failed (\(failure)); they stay staged and are retried at the next close or fsync: \(error.description)")
            throw failure
        }
        for snap in snapshots {
            guard let claim = staging.state.withLock({ _ in snap.file.claimedChecksum }) else { continue }
            if let sum = try? stagedDigest(snap.file), sum.checksumString != claim {
                logger.warning("\(slot.location.displayPath)/\(PackInput.fileName(forLayer: snap.id)): user.checksum was set to \(claim) before its bytes were written; the bytes committed have \(sum.checksumString)")
            }
        }
        // Installed now, not at the watcher's next look: the next LOOKUP finds the new layers.
        var invalidations = refresh(slot)
        let node = slot.withState { $0.directoryNode(slot: slot.slot) }
        staging.state.withLock { s in
            s.failures[slot.slot] = nil
            // Metadata committed, unless changed again meanwhile (then the new value waits).
            if var m = s.metadata[slot.slot] {
                for (id, list) in metadata.keywords where m.keywords[id] == list { m.keywords[id] = nil }
                for (id, value) in metadata.frequencies where m.frequencies[id] == value { m.frequencies[id] = nil }
                for (id, t) in metadata.times where m.times[id] == t { m.times[id] = nil }
                if m.name == metadata.name { m.name = nil }
                if m.createdAt == metadata.createdAt { m.createdAt = nil }
                if m.updatedAt == metadata.updatedAt { m.updatedAt = nil }
                s.metadata[slot.slot] = m.isEmpty ? nil : m
            }
            if var left = s.deletions[slot.slot] {
                left.subtract(deletions)
                s.deletions[slot.slot] = left.isEmpty ? nil : left
            }
            for snap in snapshots {
                let file = snap.file
                file.committedVersion = max(file.committedVersion, snap.version)
                // Let go of the name once committed and closed: the served generation answers.
                if !file.isDirty, file.writableHandles == 0, let name = file.name {
                    let key = Staging.NameKey(slot: slot.slot, name: name)
                    if s.byName[key] === file { s.byName[key] = nil }
                    file.name = nil
                    file.releasedName = name
                    invalidations.append(.entry(parent: node, name: name))
                    Staging.collect(file, in: &s)
                }
            }
        }
        let sent = invalidations
        if !sent.isEmpty, let deliver = staging.deliver.withLock({ $0 }) {
            staging.notifyQueue.async { deliver(sent) }
        }
    }

    /// The errno a failed commit answers: ENOSPC and EFBIG as such, a held lock EBUSY,
    /// anything else EIO.
    static func commitErrno(_ error: UpdateError) -> FSError {
        switch error {
        case .locked: return .busy
        case .format(let e), .unreadableBase(let e):
            if e.kind == .tooLarge { return .tooLarge }
            if e.message.hasSuffix(String(cString: strerror(ENOSPC))) { return .noSpace }
            if e.message.hasSuffix(String(cString: strerror(EDQUOT))) { return .noSpace }
            return .io
        default: return .io
        }
    }
}
