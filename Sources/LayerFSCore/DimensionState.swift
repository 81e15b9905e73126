import Glibc
import LayerFormat
import Synchronization

/// One dimension directory of the volume, in a slot of the mount's table. Its content is
/// loaded on first access, not at mount time, so mounting costs the same whatever the size;
/// later generations are taken by `refresh` (the watcher thread), never by a request.
///
/// Lock order: a slot's lock is a leaf. It is never held while taking another lock, nor while
/// talking to the kernel (notifications are sent after it is released).
public final class DimensionSlot: Sendable {
    public enum Phase: Sendable {
        case unloaded
        /// Neither file present: an empty directory, not an error.
        case empty
        case loaded(ServedGeneration)
        /// Failed validation on first load: an empty directory carrying `user.error`.
        case failed(FormatError)
        /// The directory is gone from the volume.
        case removed
    }

    struct State {
        var phase: Phase = .unloaded
        /// Older generations that the kernel still holds node ids into.
        var retired: [ServedGeneration] = []
        /// The files as they were when `phase` was decided.
        var signature: DimensionSignature?
        /// The last signature a reload failed on: not retried until the files change again.
        var rejected: DimensionSignature?
        /// Why the newest files are not served (shown as `user.error` beside a served
        /// generation, so a user can see why an update was not taken).
        var pendingError: FormatError?
        var epoch: UInt16 = 0
    }

    public let slot: Int
    public let location: DimensionLocation
    public let inodeKey: UInt64
    private let state = Mutex<State>(State())

    init(slot: Int, location: DimensionLocation) {
        self.slot = slot
        self.location = location
        switch location.kind {
        case .consciousness(let id): inodeKey = InodeNumber.dimensionKey(consciousness: id)
        case .proto(let name): inodeKey = InodeNumber.dimensionKey(proto: name)
        }
    }

    /// Owner and mtime of the dimension directory, for when there is no region to take them from.
    var directoryStatus: (uid: UInt32, gid: UInt32, mtime: Int64) { DimensionSlot.ownerAndTime(location.directory) }

    /// Owner, group and mtime of a path (zeros when it cannot be stat'ed).
    static func ownerAndTime(_ path: String) -> (uid: UInt32, gid: UInt32, mtime: Int64) {
        var st = stat()
        guard stat(path, &st) == 0 else { return (0, 0, 0) }
        return (st.st_uid, st.st_gid, Int64(st.st_mtim.tv_sec))
    }

    func withState<R, E: Error>(_ body: (inout sending State) throws(E) -> sending R) throws(E) -> sending R {
        try state.withLock(body)
    }

    /// Loads the files as they are now into `state` (first load, or a reload by refresh).
    /// A first load that fails marks the dimension failed; a reload that fails keeps the
    /// generation being served (the writer may be half way) and remembers why.
    static func load(_ location: DimensionLocation, into state: inout State, maxRegionSize: UInt64?) -> FormatError? {
        let signature = DimensionSignature.read(location)
        let previous: ServedGeneration? = if case .loaded(let g) = state.phase { g } else { nil }
        do throws(FormatError) {
            guard let generation = try Generation.load(location, maxRegionSize: maxRegionSize) else {
                if let previous { state.retire(previous) }
                state.phase = .empty
                state.signature = signature
                state.pendingError = nil
                return nil
            }
            state.epoch &+= 1
            if state.epoch == 0 { state.epoch = 1 }
            let served = ServedGeneration(generation, epoch: state.epoch, previous: previous, signature: signature)
            if let previous {
                // Unchanged layers move to the new generation with their lookup counts.
                for i in served.table.records.indices {
                    if let j = previous.position(of: .layer(slot: 0, epoch: served.table.records[i].epoch, id: served.table.records[i].id)) {
                        served.lookups[i] = previous.lookups[j]
                        previous.lookups[j] = 0
                    }
                }
                state.retire(previous)
            }
            state.phase = .loaded(served)
            state.signature = signature
            state.pendingError = nil
            state.rejected = nil
            return nil
        } catch {
            if previous == nil {
                state.phase = .failed(error)
                state.signature = signature
            } else {
                state.rejected = signature
                state.pendingError = error
            }
            return error
        }
    }
}

extension DimensionSlot.State {
    /// Keeps an old generation while the kernel holds node ids into it; drops it otherwise.
    mutating func retire(_ generation: ServedGeneration) {
        if generation.outstandingLookups > 0 { retired.append(generation) }
    }

    /// Counts one lookup of record `i` of `generation`. A listing may have started on a
    /// generation that an update replaced meanwhile: keep that one retired so the node ids it
    /// handed out stay resolvable until forgotten.
    mutating func handOut(_ generation: ServedGeneration, _ i: Int) {
        generation.lookups[i] &+= 1
        if case .loaded(let current) = phase, current === generation { return }
        if !retired.contains(where: { $0 === generation }) { retired.append(generation) }
    }

    /// Drops retired generations nothing points into any more.
    mutating func releaseForgotten() {
        retired.removeAll { $0.outstandingLookups == 0 }
    }

    /// The generation and record position a layer node id points into, current first.
    func resolve(_ node: NodeID) -> (ServedGeneration, Int)? {
        if case .loaded(let current) = phase, let i = current.position(of: node) { return (current, i) }
        for old in retired.reversed() {
            if let i = old.position(of: node) { return (old, i) }
        }
        return nil
    }
}
