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
    /// Held shared by changes of the bytes, exclusively by a commit copying them.
    let gate = FileGate()
    /// Node ids of served layers that were opened for writing and now write here.
    var borrowedNodes: [NodeID] = []
    /// The name it has in its dimension, nil once committed and let go, or unlinked.
    var name: String?
    /// The name a commit let go of (the file was committed and closed): a handle still open,
    /// or opened again through a node the kernel keeps, that writes takes the name back.
    /// Not set when the name went by unlink or rename: writes then change no layer.
    var releasedName: String?
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

/// Keeps a staged file's bytes still while a commit copies them: changes (write, truncate)
/// hold it shared, so they run in parallel with each other; the commit holds it exclusively
/// from just before it notes the size until the new generation is written, so the bytes it
/// commits are one moment's and the size it was given holds. Writer-preferring, so a stream
/// of writes cannot starve a commit.
///
/// A pthread rwlock rather than Synchronization's Mutex: the commit holds the gates of a set
/// of files known only at run time, which a scoped `withLock` cannot express.
final class FileGate: @unchecked Sendable {
    // @unchecked: the lock is only used through pthread calls, which are thread-safe.
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>

    init() {
        lock = .allocate(capacity: 1)
        var attributes = pthread_rwlockattr_t()
        pthread_rwlockattr_init(&attributes)
        pthread_rwlockattr_setkind_np(&attributes, Int32(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP))
        pthread_rwlock_init(lock, &attributes)
        pthread_rwlockattr_destroy(&attributes)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    func withShared<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }

    func close() { pthread_rwlock_wrlock(lock) }
    func open() { pthread_rwlock_unlock(lock) }
}
