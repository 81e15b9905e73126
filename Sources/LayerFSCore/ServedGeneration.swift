import Glibc
import LayerFormat
import Synchronization

/// One generation of a dimension as the mount serves it: the mapping, the compact layer
/// table, and the bookkeeping that decides when the mapping can go.
///
/// Immutable but for two things, each with its own rule (the kernel's lookup counts are not
/// here: they live in the slot's locked state, `HeldGenerations`):
/// - `broken`: set once when the region is modified in place; reads then answer EIO.
/// - `verified[i]`: the --verify-reads result for layer i (0 unknown, 1 good, 2 bad).
public final class ServedGeneration: Sendable {
    public let region: MappedRegion
    public let table: LayerTable
    public let dimensionID: UInt32
    public let name: String
    public let createdAt: Timestamp
    public let updatedAt: Timestamp
    public let uid: UInt32
    public let gid: UInt32
    /// region.mmap's mode: what the layers show.
    public let mode: UInt32
    /// The region's header checksum: `user.generation` shows it.
    public let regionChecksum: Digest256
    /// What the files looked like when this generation was loaded.
    let signature: DimensionSignature
    /// Set for a Jessy legacy region: its layout, warnings and extra layer attributes.
    public let legacy: LegacyDetails?

    private let verified: Mutex<[UInt8]>
    private let brokenFlag = Atomic<Bool>(false)
    /// What has been served, for dropping the region's pages that the kernel now holds twice.
    let servedPages = ServedPageLedger()

    /// `table` is `generation`'s, with its versions assigned.
    init(_ generation: Generation, table: LayerTable, signature: DimensionSignature) {
        region = generation.region
        self.table = table
        dimensionID = generation.header.dimensionID
        name = generation.dimensionName
        createdAt = generation.createdAt
        updatedAt = generation.updatedAt
        uid = generation.region.status.st_uid
        gid = generation.region.status.st_gid
        mode = generation.region.status.st_mode
        regionChecksum = generation.header.checksum
        self.signature = signature
        legacy = generation.legacy
        verified = Mutex([])
    }

    public var isBroken: Bool { brokenFlag.load(ordering: .relaxed) }
    func markBroken() { brokenFlag.store(true, ordering: .relaxed) }

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
    var directory: FileIdentity?
    var region: FileIdentity?
    var index: FileIdentity?

    static func read(_ location: DimensionLocation) -> DimensionSignature {
        func id(_ path: String) -> FileIdentity? {
            var st = stat()
            guard stat(path, &st) == 0 else { return nil }
            return FileIdentity(st)
        }
        // The directory counts by identity only: a swap gives a new one, while its mtime
        // moves with every scratch file a writer creates beside the two that matter.
        var directory = id(location.directory)
        directory?.size = 0
        directory?.mtimeSeconds = 0
        directory?.mtimeNanoseconds = 0
        return DimensionSignature(directory: directory, region: id(location.regionPath), index: id(location.indexPath))
    }

    /// The files a loaded generation was read from, by fstat of the descriptors it used: the
    /// paths may already name newer files by the time the load ends.
    init(directory: FileIdentity?, generation: Generation) {
        self.directory = directory
        region = generation.regionFile
        // A legacy region has no index.json: the path's stat finds none, and so must this.
        index = generation.legacy == nil ? generation.indexFile : nil
    }

    init(directory: FileIdentity?, region: FileIdentity?, index: FileIdentity?) {
        self.directory = directory
        self.region = region
        self.index = index
    }

    /// The same region file, changed in place: a writer breaking the rules.
    func regionModifiedInPlace(comparedTo old: DimensionSignature) -> Bool {
        guard let r = region, let o = old.region, r.device == o.device, r.inode == o.inode else { return false }
        return r.size != o.size || r.mtimeSeconds != o.mtimeSeconds || r.mtimeNanoseconds != o.mtimeNanoseconds
    }
}
