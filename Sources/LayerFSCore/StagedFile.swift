import Glibc
import LayerFormat

/// The bytes of one file being written through a writable mount, before they are a layer: an
/// anonymous file (O_TMPFILE) in the volume's `temp/`, on the volume's own filesystem, so the
/// commit copies them once, and a crash or an unmount leaves nothing behind.
///
/// The descriptor is fixed for the object's life and closed in deinit, so a reader holding a
/// reference can pread without a lock. The mutable fields are guarded by `Staging`'s lock.
final class StagedFile: @unchecked Sendable {
    let fd: Int32
    let slot: DimensionSlot
    /// The node id given to LOOKUPs of this file (a scratch file's or a new layer's only one).
    let node: NodeID
    /// Node ids of served layers that were opened for writing and now write here.
    var borrowedNodes: [NodeID] = []
    /// The name it has in its dimension, nil once committed and let go, or unlinked.
    var name: String?
    var size: UInt64 = 0
    /// Bumped by every change of the bytes; the commit remembers which it wrote.
    var version: UInt64 = 0
    var committedVersion: UInt64 = 0
    var lookups: UInt64 = 0
    var handles = 0
    var writableHandles = 0
    /// Seconds since the epoch shown as mtime; utimens sets it (it becomes updated_at only
    /// through the commit's own time).
    var modified: Int64
    /// Set by utimens: `modified` becomes the layer's updated_at (else the commit's time).
    var timeSet = false
    /// user.keywords / user.frequency set on this file; nil keeps the layer's.
    var keywords: [String]?
    var frequency: Double?
    /// user.checksum set before the bytes were written (tar): checked at the commit.
    var claimedChecksum: String?

    var isDirty: Bool { version != committedVersion }

    init(fd: Int32, slot: DimensionSlot, node: NodeID, name: String) {
        self.fd = fd
        self.slot = slot
        self.node = node
        self.name = name
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        modified = Int64(now.tv_sec)
    }

    deinit { close(fd) }

    /// An anonymous file in `directory`; falls back to a named one unlinked at once where
    /// O_TMPFILE is refused (older kernels, some network filesystems).
    static func makeFile(in directory: String) -> Int32? {
        // O_TMPFILE is a macro Swift does not import: __O_TMPFILE (0o20000000) | O_DIRECTORY.
        let tmpfile: Int32 = 0o20000000 | O_DIRECTORY
        let fd = open(directory, tmpfile | O_RDWR | O_CLOEXEC, 0o600)
        if fd >= 0 { return fd }
        var template = Array((directory + "/.layerfs-staging-XXXXXX").utf8CString)
        let named = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard named >= 0 else { return nil }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        return named
    }
}
