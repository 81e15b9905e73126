import Glibc
import LayerFormat
import Synchronization

/// One generation of a dimension as the mount serves it: the mapping, the compact layer
/// table, and the bookkeeping that decides when the mapping can go.
///
/// Immutable but for three things, each with its own rule:
/// - `lookups[i]`: how many times the kernel was handed layer i's node id from this
///   generation and has not forgotten it. Changed only under the owning slot's lock.
/// - `broken`: set once when the region is modified in place; reads then answer EIO.
/// - `verified[i]`: the --verify-reads result for layer i (0 unknown, 1 good, 2 bad).
///
/// @unchecked Sendable: `lookups` is guarded by the slot's lock as said above.
public final class ServedGeneration: @unchecked Sendable {
    public let region: MappedRegion
    public let table: LayerTable
    public let dimensionID: UInt32
    public let name: String
    public let createdAt: Timestamp
    public let updatedAt: Timestamp
    public let uid: UInt32
    public let gid: UInt32
    /// This dimension's generation counter in this mount; node ids of layers whose content
    /// first appears in this generation carry it.
    public let epoch: UInt16
    /// The region's header checksum: `user.generation` shows it.
    public let regionChecksum: Digest256
    /// What the files looked like when this generation was loaded.
    let signature: DimensionSignature

    let lookups: UnsafeMutableBufferPointer<UInt32>
    private let verified: Mutex<[UInt8]>
    private let brokenFlag = Atomic<Bool>(false)

    init(_ generation: Generation, epoch: UInt16, previous: ServedGeneration?, signature: DimensionSignature) {
        region = generation.region
        var table = LayerTable(generation: generation, epoch: epoch)
        if let previous { table.keepEpochs(of: previous.table) }
        self.table = table
        dimensionID = generation.header.dimensionID
        name = generation.dimensionName
        createdAt = generation.createdAt
        updatedAt = generation.updatedAt
        uid = generation.region.status.st_uid
        gid = generation.region.status.st_gid
        regionChecksum = generation.header.checksum
        self.epoch = epoch
        self.signature = signature
        lookups = .allocate(capacity: table.records.count)
        lookups.initialize(repeating: 0)
        verified = Mutex([])
    }

    deinit {
        lookups.deallocate()
    }

    public var isBroken: Bool { brokenFlag.load(ordering: .relaxed) }
    func markBroken() { brokenFlag.store(true, ordering: .relaxed) }

    /// Lookups still outstanding against this generation (under the slot's lock).
    var outstandingLookups: UInt64 { lookups.reduce(0) { $0 + UInt64($1) } }

    /// The record for a layer node id, if it belongs to this generation.
    func position(of node: NodeID) -> Int? {
        guard let i = table.position(of: node.layerID), table.records[i].epoch == node.epoch else { return nil }
        return i
    }

    // A lock, not atomics: it is only taken with --verify-reads.
    // Allocated on first use: a mount without --verify-reads never pays for it.
    func verification(_ i: Int) -> UInt8 { verified.withLock { $0.isEmpty ? 0 : $0[i] } }

    func setVerification(_ i: Int, _ value: UInt8) {
        let count = table.records.count
        verified.withLock { states in
            if states.isEmpty { states = [UInt8](repeating: 0, count: count) }
            states[i] = value
        }
    }
}

/// What a dimension's files look like on disk, cheaply (three stats): a change means a writer
/// did something. The directory's and files' identities tell a replacement (new inode) from
/// an in-place modification (same inode, new size or mtime).
public struct DimensionSignature: Equatable, Sendable {
    struct FileID: Equatable, Sendable {
        var device: UInt64, inode: UInt64, size: Int64, mtime: Int64, mtimeNanoseconds: Int
    }

    var directory: FileID?
    var region: FileID?
    var index: FileID?

    static func read(_ location: DimensionLocation) -> DimensionSignature {
        func id(_ path: String) -> FileID? {
            var st = stat()
            guard stat(path, &st) == 0 else { return nil }
            return FileID(device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size),
                          mtime: Int64(st.st_mtim.tv_sec), mtimeNanoseconds: st.st_mtim.tv_nsec)
        }
        // The directory counts by identity only: a swap gives a new one, while its mtime
        // moves with every scratch file a writer creates beside the two that matter.
        var directory = id(location.directory)
        directory?.size = 0
        directory?.mtime = 0
        directory?.mtimeNanoseconds = 0
        return DimensionSignature(directory: directory, region: id(location.regionPath), index: id(location.indexPath))
    }

    /// The same region file, changed in place: a writer breaking the rules.
    func regionModifiedInPlace(comparedTo old: DimensionSignature) -> Bool {
        guard let r = region, let o = old.region, r.device == o.device, r.inode == o.inode else { return false }
        return r.size != o.size || r.mtime != o.mtime || r.mtimeNanoseconds != o.mtimeNanoseconds
    }
}
