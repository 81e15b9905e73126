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
        /// A generation is served (`State.served`).
        case loaded
        /// Failed validation on first load: an empty directory carrying `user.error`.
        case failed(FormatError)
        /// The directory is gone from the volume: every request on it answers ENOENT.
        case removed
    }

    struct State {
        private(set) var phase: Phase = .unloaded
        /// The generations the kernel may still name, with its lookup counts.
        var held: HeldGenerations
        /// Counts the dimension's comings back: its directory's node id carries it, so a
        /// directory that came back is a new inode to the kernel, with nothing cached inside.
        private(set) var incarnation: UInt64 = 0
        /// The files as they were when `phase` was decided.
        var signature: DimensionSignature?
        /// The last signature a reload failed on: not retried until the files change again.
        var rejected: DimensionSignature?
        /// Why the newest files are not served (shown as `user.error` beside a served
        /// generation, so a user can see why an update was not taken).
        var pendingError: FormatError?
        /// Loads taken and refused, for `layerfs status` (FileSystem+Status.swift).
        var history = LoadHistory()

        init(tagging: NodeTagging, firstVersion: UInt64) {
            held = HeldGenerations(tagging: tagging, firstVersion: firstVersion)
        }

        var served: ServedGeneration? { held.served }
        var isRemoved: Bool { if case .removed = phase { true } else { false } }
        var isUnloaded: Bool { if case .unloaded = phase { true } else { false } }

        /// The directory's node id in this incarnation.
        func directoryNode(slot: Int) -> NodeID { .dimension(slot: slot, tag: held.tagging.tag(incarnation)) }
        var directoryGeneration: UInt64 { held.tagging.generation(incarnation) }

        /// Whether `node` names this dimension's directory as it is now.
        func isCurrentDirectory(_ node: NodeID) -> Bool { !isRemoved && node.tag == held.tagging.tag(incarnation) }

        /// Enters a phase without a served generation; the one served until now is retired.
        mutating func leave(to phase: Phase) {
            held.retire()
            self.phase = phase
        }

        mutating func markRemoved() { leave(to: .removed) }

        /// A removed dimension's directory appeared again: a new incarnation, loaded on demand.
        mutating func reappear() {
            incarnation += 1
            phase = .unloaded
            signature = nil
            rejected = nil
            pendingError = nil
        }

        mutating func serve(_ generation: ServedGeneration, nextVersion: UInt64) {
            held.install(generation, nextVersion: nextVersion)
            phase = .loaded
        }
    }

    public let slot: Int
    public let location: DimensionLocation
    public let inodeKey: UInt64
    private let state: Mutex<State>

    init(slot: Int, location: DimensionLocation, tagging: NodeTagging, firstVersion: UInt64) {
        self.slot = slot
        self.location = location
        state = Mutex(State(tagging: tagging, firstVersion: firstVersion))
        switch location.kind {
        case .consciousness(let id): inodeKey = InodeNumber.dimensionKey(consciousness: id)
        case .proto(let name): inodeKey = InodeNumber.dimensionKey(proto: name)
        }
    }

    /// Owner, mode and mtime of the dimension directory.
    var directoryStatus: PathStatus? { PathStatus(location.directory) }

    func withState<R, E: Error>(_ body: (inout sending State) throws(E) -> sending R) throws(E) -> sending R {
        try state.withLock(body)
    }

    enum LoadOutcome {
        case taken
        /// The files are not one valid generation; the previous state is kept.
        case rejected(FormatError)
        /// Valid, but deferred: some changed layer has no free node id tag yet.
        case deferred(layer: UInt32)
        /// The directory itself is gone: nothing changes here; the watcher marks it removed.
        case vanished
    }

    /// Loads the files as they are now into `state` (first load, or a reload by refresh).
    /// A first load that fails marks the dimension failed; a reload that fails keeps the
    /// generation being served (the writer may be half way) and remembers why.
    static func load(_ location: DimensionLocation, into state: inout State, maxRegionSize: UInt64?,
                     events: (@Sendable (GenerationEvent) -> Void)? = nil) -> LoadOutcome {
        let pathSignature = DimensionSignature.read(location)
        guard pathSignature.directory != nil else { return .vanished }
        let started = LoadHistory.monotonicNanoseconds()
        let outcome = loadFiles(location, into: &state, pathSignature: pathSignature, maxRegionSize: maxRegionSize)
        state.history.record(outcome, served: state.served, since: started)
        if let events { state.history.report(outcome, served: state.served, dimension: location.displayPath, to: events) }
        return outcome
    }

    static func loadFiles(_ location: DimensionLocation, into state: inout State, pathSignature: DimensionSignature,
                          maxRegionSize: UInt64?) -> LoadOutcome {
        do throws(FormatError) {
            guard let generation = try Generation.load(location, maxRegionSize: maxRegionSize) else {
                state.leave(to: .empty)
                state.signature = pathSignature
                state.pendingError = nil
                state.rejected = nil
                return .taken
            }
            var table = LayerTable(generation: generation)
            let (result, next) = state.held.assignVersions(&table)
            if case .noFreeTag(let layer) = result { return .deferred(layer: layer) }
            // The identity of the files actually opened, not of what the paths named before.
            let signature = DimensionSignature(directory: pathSignature.directory, generation: generation)
            state.serve(ServedGeneration(generation, table: table, signature: signature), nextVersion: next)
            state.signature = signature
            state.pendingError = nil
            state.rejected = nil
            return .taken
        } catch {
            if state.served == nil {
                state.leave(to: .failed(error))
                state.signature = pathSignature
            } else {
                state.rejected = pathSignature
                state.pendingError = error
            }
            return .rejected(error)
        }
    }
}
