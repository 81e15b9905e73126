import Dispatch
import Glibc
import LayerFormat
import Synchronization

/// What a writable mount holds between a write and its commit: the staged files by name and
/// by node id, the open handles, the deletions not yet committed, and the commit batching.
///
/// Concurrency: one lock (`state`) guards the tables and every `StagedFile`'s mutable fields;
/// it is a leaf, like a slot's lock: never held while taking a slot's lock, and never across a
/// system call that can block for long (pwrite and pread run outside it; the descriptor
/// outlives them because the caller holds a reference). Commits of the whole mount run one at a
/// time under `commitLock`, taken before `state` and never inside it; the batching timer, an
/// fsync and the unmount all go through it, so a close arriving during a commit only marks its
/// file for the next one.
final class Staging: Sendable {
    struct NameKey: Hashable {
        var slot: Int
        var name: String
    }

    struct Handle {
        var file: StagedFile?
        var writable: Bool
    }

    struct State {
        var byName: [NameKey: StagedFile] = [:]
        var byNode: [UInt64: StagedFile] = [:]
        var handles: [UInt64: Handle] = [:]
        var nextHandle: UInt64 = 1
        /// Own node ids of staged files: slot 0 (no dimension or layer node has it), above the
        /// root and proto ids, never reused within the mount.
        var nextNode: UInt64 = 1 << 40
        /// Layers unlinked (or renamed away) and not committed yet, by slot.
        var deletions: [Int: Set<UInt32>] = [:]
        /// Slots with a batched commit pending.
        var scheduled: Set<Int> = []
        /// The last failed commit of a slot: returned to the next flush or fsync there.
        var failures: [Int: FSError] = [:]
        /// Set by `finishWrites` (the mount is ending): batched commits still queued do nothing.
        var finished = false
        /// Metadata changes of served layers and of the index, by slot.
        var metadata: [Int: DimensionMetadata] = [:]
    }

    let state = Mutex(State())
    let commitLock = Mutex(())
    /// Where the kernel is told what a commit made stale (set by the binding).
    let deliver = Mutex<(@Sendable ([Invalidation]) -> Void)?>(nil)
    /// One queue for the deliveries, in order, off the request threads: a request handler
    /// (fsyncdir, rename) may hold the directory's lock the notification waits for.
    let notifyQueue = DispatchQueue(label: "layerfs.notify")

    static func isScratchName(_ name: String) -> Bool { name.hasPrefix(".") && name != "." && name != ".." }

    static func isStagedNode(_ node: NodeID) -> Bool { node.slot == 0 && node.rawValue >= 1 << 40 }

    /// Drops a file no one can reach any more (no name, handle, lookup or borrowed node).
    static func collect(_ file: StagedFile, in state: inout State) {
        guard file.name == nil, file.handles == 0, file.lookups == 0, file.borrowedNodes.isEmpty else { return }
        state.byNode[file.node.rawValue] = nil
    }
}

extension FileSystem {
    public var isWritable: Bool { configuration.writable }

    /// The binding's way to tell the kernel what a commit made stale.
    public func setInvalidationHandler(_ handler: @escaping @Sendable ([Invalidation]) -> Void) {
        staging.deliver.withLock { $0 = handler }
    }

    /// Whether a commit of `slot` now would write anything (files closed, deletions, metadata).
    func hasPendingChanges(_ slot: DimensionSlot) -> Bool {
        staging.state.withLock { s in
            !(s.deletions[slot.slot]?.isEmpty ?? true) || !(s.metadata[slot.slot]?.isEmpty ?? true)
                || s.byName.contains { $0.key.slot == slot.slot && $0.value.isDirty && $0.value.writableHandles == 0 && !Staging.isScratchName($0.key.name) }
        }
    }

    // MARK: - Reading staged files

    func stagedFile(_ node: NodeID) -> StagedFile? {
        guard isWritable else { return nil }
        return staging.state.withLock { $0.byNode[node.rawValue] }
    }

    func stagedAttributes(_ file: StagedFile) -> Attributes {
        let (name, size, modified) = staging.state.withLock { _ in (file.name, file.size, file.modified) }
        let id = name.flatMap { PackInput.layerID(fromName: $0) } ?? UInt32(truncatingIfNeeded: file.node.rawValue) | 0x8000_0000
        // As the layer will show once committed: region.mmap's owner and mode, or for a new
        // dimension what the commit will create (the writer's, 0644).
        let region = PathStatus(file.slot.location.regionPath)
        let a = Attributes(inode: InodeNumber.layer(key: file.slot.inodeKey, id: id), kind: .file, permissions: 0, links: 1,
                           size: size, uid: region?.uid ?? geteuid(), gid: region?.gid ?? getegid(), time: Timestamp(seconds: modified))
        return configuration.presentation.apply(a, volumeMode: region?.mode ?? 0o644)
    }

    /// A staged file's entry for LOOKUP or READDIRPLUS; counts one lookup.
    func stagedEntry(_ file: StagedFile) -> Entry {
        staging.state.withLock { _ in file.lookups += 1 }
        return Entry(node: file.node, generation: 0, attributes: stagedAttributes(file))
    }

    /// What a name in a dimension means on a writable mount before the served generation is
    /// asked: a staged file, a deletion not committed yet (ENOENT), or nothing (nil).
    func stagedLookup(_ slot: DimensionSlot, _ name: String) throws(FSError) -> Entry? {
        guard isWritable else { return nil }
        let (file, deleted) = staging.state.withLock { s in
            (s.byName[Staging.NameKey(slot: slot.slot, name: name)],
             PackInput.layerID(fromName: name).map { s.deletions[slot.slot]?.contains($0) ?? false } ?? false)
        }
        if let file { return stagedEntry(file) }
        if deleted || Staging.isScratchName(name) { throw .notFound }
        return nil
    }

    func readStaged<R>(_ file: StagedFile, offset: UInt64, size: Int, _ body: (UnsafeRawBufferPointer) -> R) throws(FSError) -> R {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 1), alignment: 4096)
        defer { buffer.deallocate() }
        let n = pread(file.fd, buffer.baseAddress, size, off_t(offset))
        if n < 0 { throw .io }
        return withExtendedLifetime(file) { body(UnsafeRawBufferPointer(rebasing: buffer[0..<n])) }
    }

    /// FORGET of a staged file's own node, or of a served node that was writing into one.
    func forgetStaged(_ node: NodeID, count: UInt64, fully: Bool) {
        guard isWritable else { return }
        staging.state.withLock { s in
            guard let file = s.byNode[node.rawValue] else { return }
            if file.node == node {
                file.lookups -= min(file.lookups, count)
            } else if fully {
                file.borrowedNodes.removeAll { $0 == node }
                s.byNode[node.rawValue] = nil
            }
            Staging.collect(file, in: &s)
        }
    }
}
