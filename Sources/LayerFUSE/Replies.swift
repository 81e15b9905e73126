import CFuse
import Glibc
import LayerFSCore

/// Turning the core's plain values into libfuse replies. Every request gets exactly one reply:
/// each operation in `Operations.swift` is a single do/catch whose two branches each reply.
enum Reply {
    static func error(_ req: fuse_req_t?, _ error: FSError) {
        fuse_reply_err(req, error.errno)
    }

    static func stat(_ a: Attributes) -> Glibc.stat {
        var st = Glibc.stat()
        st.st_ino = UInt(truncatingIfNeeded: a.inode.rawValue)
        st.st_mode = (a.kind == .file ? S_IFREG : S_IFDIR) | a.permissions
        st.st_nlink = UInt(a.links)
        st.st_size = off_t(truncatingIfNeeded: a.size)
        st.st_blocks = blkcnt_t(truncatingIfNeeded: a.blocks)
        st.st_blksize = 4096
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
        e.generation = 0
        e.attr = stat(entry.attributes)
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
        var st = stat(a)
        fuse_reply_attr(req, &st, cache.attributeTimeout)
    }

    /// GETXATTR / LISTXATTR: size 0 asks for the length; a smaller buffer is ERANGE.
    static func extendedAttribute(_ req: fuse_req_t?, _ value: [UInt8], size: Int) {
        if size == 0 {
            fuse_reply_xattr(req, value.count)
        } else if value.count > size {
            fuse_reply_err(req, ERANGE)
        } else {
            value.withUnsafeBytes { _ = fuse_reply_buf(req, $0.baseAddress?.assumingMemoryBound(to: CChar.self), $0.count) }
        }
    }
}
