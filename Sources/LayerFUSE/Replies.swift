import CFuse
import Glibc
import LayerFSCore

/// Turning the core's plain values into libfuse replies. Every request gets exactly one reply:
/// each operation in `Operations.swift` is a single do/catch whose two branches each reply.
enum Reply {
    static func error(_ req: fuse_req_t?, _ error: FSError) {
        if let req { Operations.context(req).observer.failed(req, error.errno) }
        fuse_reply_err(req, error.errno)
    }

    static func stat(_ a: Attributes, blockSize: Int = 4096) -> Glibc.stat {
        var st = Glibc.stat()
        st.st_ino = UInt(truncatingIfNeeded: a.inode.rawValue)
        st.st_mode = (a.kind == .file ? S_IFREG : S_IFDIR) | a.permissions
        st.st_nlink = UInt(a.links)
        st.st_size = off_t(truncatingIfNeeded: a.size)
        st.st_blocks = blkcnt_t(truncatingIfNeeded: a.blocks)
        st.st_blksize = blksize_t(blockSize)
        st.st_uid = a.uid
        st.st_gid = a.gid
        let t = timespec(tv_sec: time_t(a.time.seconds), tv_nsec: 0)
        st.st_atim = t
        st.st_mtim = t
        st.st_ctim = t
        return st
    }

    static func entryParameters(_ entry: Entry, _ cache: CachePolicy) -> fuse_entry_param {
        var e = fuse_entry_param()
        e.ino = entry.node.rawValue
        e.generation = entry.generation
        e.attr = stat(entry.attributes, blockSize: cache.blockSize)
        e.attr_timeout = cache.attributeTimeout
        e.entry_timeout = cache.entryTimeout
        return e
    }

    static func entry(_ req: fuse_req_t?, _ entry: Entry, _ cache: CachePolicy) {
        var e = entryParameters(entry, cache)
        fuse_reply_entry(req, &e)
    }

    /// A cached "no such name": node id 0 with a timeout (a plain ENOENT is not cached).
    static func negativeEntry(_ req: fuse_req_t?, _ cache: CachePolicy) {
        var e = fuse_entry_param()
        e.ino = 0
        e.entry_timeout = cache.negativeTimeout
        fuse_reply_entry(req, &e)
    }

    static func attributes(_ req: fuse_req_t?, _ a: Attributes, _ cache: CachePolicy) {
        var st = stat(a, blockSize: cache.blockSize)
        fuse_reply_attr(req, &st, cache.attributeTimeout)
    }

    /// What GETXATTR / LISTXATTR answer for a value of `count` bytes and a caller's buffer of
    /// `size`: size 0 asks for the length; a smaller buffer is ERANGE; a value the kernel
    /// cannot pass (over XATTR_SIZE_MAX) is E2BIG, as the kernel itself would say.
    enum ExtendedAttributeAnswer: Equatable {
        case length(Int)
        case value
        case error(Int32)
    }

    static let extendedAttributeSizeMax = 65_536

    static func extendedAttributeAnswer(count: Int, size: Int) -> ExtendedAttributeAnswer {
        if count > extendedAttributeSizeMax { return .error(E2BIG) }
        if size == 0 { return .length(count) }
        return count > size ? .error(ERANGE) : .value
    }

    static func extendedAttribute(_ req: fuse_req_t?, _ value: [UInt8], size: Int) {
        switch extendedAttributeAnswer(count: value.count, size: size) {
        case .length(let n): fuse_reply_xattr(req, n)
        case .error(let e):
            if let req { Operations.context(req).observer.failed(req, e) }
            fuse_reply_err(req, e)
        case .value: value.withUnsafeBytes { _ = fuse_reply_buf(req, $0.baseAddress?.assumingMemoryBound(to: CChar.self), $0.count) }
        }
    }

    /// STATFS: the volume's size and layer count, read-only, nothing free.
    static func fileSystemStatus(_ s: Statistics) -> statvfs {
        var st = statvfs()
        st.f_bsize = UInt(s.blockSize)
        st.f_frsize = UInt(s.blockSize)
        st.f_blocks = fsblkcnt_t(s.blocks)
        st.f_files = fsfilcnt_t(s.files)
        st.f_namemax = UInt(s.nameMax)
        st.f_flag = UInt(ST_RDONLY)
        return st
    }
}
