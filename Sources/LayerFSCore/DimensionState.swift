import Glibc
import LayerFormat
import Synchronization

/// A dimension as currently served: one immutable generation, with what the mount shows of it.
public final class ServedGeneration: Sendable {
    public let region: MappedRegion
    public let table: LayerTable
    public let dimensionID: UInt32
    public let name: String
    public let createdAt: Timestamp
    public let updatedAt: Timestamp
    public let uid: UInt32
    public let gid: UInt32
    /// This dimension's generation counter in this mount (1 for the first load).
    public let epoch: UInt16

    init(_ generation: Generation, epoch: UInt16) {
        region = generation.region
        table = LayerTable(generation: generation, epoch: epoch)
        dimensionID = generation.header.dimensionID
        name = generation.dimensionName
        createdAt = generation.createdAt
        updatedAt = generation.updatedAt
        uid = generation.region.status.st_uid
        gid = generation.region.status.st_gid
        self.epoch = epoch
    }
}

/// One dimension directory of the volume, in a slot of the mount's table. Its content is
/// loaded on first access, not at mount time, so mounting costs the same whatever the size.
public final class DimensionSlot: Sendable {
    public enum State: Sendable {
        case unloaded
        /// Neither file present: an empty directory, not an error.
        case empty
        case loaded(ServedGeneration)
        /// Failed validation: shown as an empty directory carrying `user.error`.
        case failed(FormatError)
    }

    public let slot: Int
    public let location: DimensionLocation
    public let inodeKey: UInt64
    /// Owner and mtime of the dimension directory, for when there is no region to take them from.
    let directoryStatus: (uid: UInt32, gid: UInt32, mtime: Int64)
    private let state = Mutex<State>(.unloaded)

    init(slot: Int, location: DimensionLocation) {
        self.slot = slot
        self.location = location
        switch location.kind {
        case .consciousness(let id): inodeKey = InodeNumber.dimensionKey(consciousness: id)
        case .proto(let name): inodeKey = InodeNumber.dimensionKey(proto: name)
        }
        var st = stat()
        if stat(location.directory, &st) == 0 {
            directoryStatus = (st.st_uid, st.st_gid, Int64(st.st_mtim.tv_sec))
        } else {
            directoryStatus = (0, 0, 0)
        }
    }

    /// The state, loading the dimension first if this is the first access. Loading happens
    /// under this slot's lock: concurrent first accesses wait for one load; other dimensions
    /// are not held up.
    func current(maxRegionSize: UInt64?, onFailure: (FormatError) -> Void) -> State {
        state.withLock { state in
            if case .unloaded = state {
                do throws(FormatError) {
                    if let generation = try Generation.load(location, maxRegionSize: maxRegionSize) {
                        state = .loaded(ServedGeneration(generation, epoch: 1))
                    } else {
                        state = .empty
                    }
                } catch {
                    onFailure(error)
                    state = .failed(error)
                }
            }
            return state
        }
    }

    /// The state without loading (for listings that must stay cheap).
    var peek: State { state.withLock { $0 } }
}
