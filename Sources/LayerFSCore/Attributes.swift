import Glibc
import LayerFormat

/// What `stat` shows for a node, as plain values; the binding turns it into `struct stat`.
public struct Attributes: Equatable, Sendable {
    public enum Kind: Sendable { case file, directory }

    public var inode: InodeNumber
    public var kind: Kind
    /// Permission bits only (`Presentation` decides them).
    public var permissions: UInt32
    public var links: UInt32
    public var size: UInt64
    public var uid: UInt32
    public var gid: UInt32
    /// mtime = ctime = atime.
    public var time: Timestamp

    /// 512-byte blocks, rounded up, so that `du` adds up to the layers' sizes.
    public var blocks: UInt64 { (size + 511) / 512 }
}

/// Owner, mode, mtime and device of a path of the volume, by stat (following symlinks).
struct PathStatus {
    var uid: UInt32, gid: UInt32, mode: UInt32, mtime: Int64, device: UInt64

    init?(_ path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        uid = st.st_uid
        gid = st.st_gid
        mode = st.st_mode
        mtime = Int64(st.st_mtim.tv_sec)
        device = UInt64(truncatingIfNeeded: st.st_dev)
    }
}

/// A name handed to the kernel with its node id and attributes (LOOKUP, READDIRPLUS).
/// `generation` goes into the entry's generation field: with the node id it never names two
/// contents within the mount's life (see `NodeTagging`).
public struct Entry: Sendable {
    public var node: NodeID
    public var generation: UInt64
    public var attributes: Attributes

    public init(node: NodeID, generation: UInt64, attributes: Attributes) {
        self.node = node
        self.generation = generation
        self.attributes = attributes
    }
}

/// One directory entry. `entry` is nil where handing out attributes would force work the
/// listing does not need (a dimension not loaded yet): the kernel then looks it up on demand.
public struct DirectoryEntry: Sendable {
    public var name: String
    public var inode: InodeNumber
    public var kind: Attributes.Kind
    public var entry: Entry?
}

/// What `statfs` reports: the volume's size, read-only (nothing free).
public struct Statistics: Sendable {
    public var blockSize: UInt64 = 4096
    public var blocks: UInt64
    public var files: UInt64
    public var nameMax: UInt64 = 255
}
