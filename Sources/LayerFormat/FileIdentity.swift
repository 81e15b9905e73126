import Glibc

/// Which file a reader opened, and in what state: device and inode say which file, size and
/// mtime whether it changed. Comparing the identity of a file in hand with a later stat of its
/// path tells whether the path still names the same, unchanged file (a writer replaces files
/// by rename, which gives a new inode). Taken with fstat of the descriptor that was read, so it
/// describes the bytes that were read even when the path was replaced in between.
public struct FileIdentity: Equatable, Sendable {
    public var device: UInt64
    public var inode: UInt64
    public var size: Int64
    public var mtimeSeconds: Int64
    public var mtimeNanoseconds: Int64

    public init(device: UInt64, inode: UInt64, size: Int64, mtimeSeconds: Int64, mtimeNanoseconds: Int64) {
        self.device = device
        self.inode = inode
        self.size = size
        self.mtimeSeconds = mtimeSeconds
        self.mtimeNanoseconds = mtimeNanoseconds
    }

    public init(_ st: stat) {
        // truncatingIfNeeded: the widths of dev_t, ino_t and time_t differ between C
        // libraries; none is wider than 64 bits, so nothing is lost and nothing can trap.
        self.init(device: UInt64(truncatingIfNeeded: st.st_dev), inode: UInt64(truncatingIfNeeded: st.st_ino),
                  size: Int64(truncatingIfNeeded: st.st_size), mtimeSeconds: Int64(truncatingIfNeeded: st.st_mtim.tv_sec),
                  mtimeNanoseconds: Int64(truncatingIfNeeded: st.st_mtim.tv_nsec))
    }
}
