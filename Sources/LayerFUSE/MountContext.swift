import CFuse
import Glibc
import LayerFSCore
import Logging

/// What the C callbacks reach through `fuse_req_userdata`: the filesystem core, the cache
/// policy, the logger, and the hook that reports "ready" once the kernel's INIT is answered.
public final class MountContext: @unchecked Sendable {
    // @unchecked: every property is immutable after init; the core is Sendable.
    public let fs: FileSystem
    public let cache: CachePolicy
    public let logger: Logger
    let debug: Bool
    /// Largest read request, in bytes (the kernel's max_pages follows max_write).
    let maxRequest: UInt32
    let onReady: @Sendable () -> Void

    public init(fs: FileSystem, logger: Logger, debug: Bool, maxRequest: UInt32 = 1 << 20, onReady: @escaping @Sendable () -> Void) {
        self.fs = fs
        self.cache = fs.configuration.cache
        self.logger = logger
        self.debug = debug
        self.maxRequest = maxRequest
        self.onReady = onReady
    }

    func trace(_ op: String, _ ino: UInt64, _ detail: @autoclosure () -> String = "") {
        guard debug else { return }
        logger.debug("\(op) node=\(ino) \(detail())")
    }

    func refuse(_ req: fuse_req_t?, _ op: String, _ ino: UInt64) {
        trace(op, ino, "-> EROFS")
        Reply.error(req, .readOnly)
    }

    /// INIT: choose the connection's features, then report ready. libfuse sends the INIT
    /// reply right after this returns, and the kernel holds other requests until it has it.
    func negotiate(_ conn: UnsafeMutablePointer<fuse_conn_info>) {
        let capable = conn.pointee.capable
        var want = conn.pointee.want
        if capable & UInt32(FUSE_CAP_READDIRPLUS) != 0 {
            want |= UInt32(FUSE_CAP_READDIRPLUS)
            // Always plus: `ls -l` then needs no LOOKUP per entry.
            want &= ~UInt32(FUSE_CAP_READDIRPLUS_AUTO)
        }
        // Reads come from a mapping: splice only adds a pipe copy.
        want &= ~UInt32(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE)
        want &= ~UInt32(FUSE_CAP_WRITEBACK_CACHE)
        conn.pointee.want = want
        conn.pointee.max_write = maxRequest
        conn.pointee.max_readahead = maxRequest
        logger.info("connection ready: protocol \(conn.pointee.proto_major).\(conn.pointee.proto_minor), max request \(maxRequest) bytes")
        onReady()
    }

    func readDirectory(_ req: fuse_req_t?, _ ino: fuse_ino_t, size: Int, offset: off_t, plus: Bool) {
        trace(plus ? "READDIRPLUS" : "READDIR", ino, "offset=\(offset)")
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: size)
        defer { buffer.deallocate() }
        var used = 0
        do throws(FSError) {
            try fs.readDirectory(NodeID(rawValue: ino), from: Int(max(0, offset)), plus: plus) { item, next in
                var needed: Int
                if plus {
                    var e: fuse_entry_param
                    if let entry = item.entry {
                        e = Reply.entryParameters(entry, cache)
                    } else {
                        // Node id 0: the kernel lists the name without instantiating it.
                        e = fuse_entry_param()
                        e.attr.st_ino = UInt(truncatingIfNeeded: item.inode.rawValue)
                        e.attr.st_mode = item.kind == .file ? S_IFREG : S_IFDIR
                    }
                    needed = fuse_add_direntry_plus(req, buffer + used, size - used, item.name, &e, off_t(next))
                } else {
                    var st = Glibc.stat()
                    st.st_ino = UInt(truncatingIfNeeded: item.inode.rawValue)
                    st.st_mode = item.kind == .file ? S_IFREG : S_IFDIR
                    needed = fuse_add_direntry(req, buffer + used, size - used, item.name, &st, off_t(next))
                }
                if needed > size - used { return false }
                used += needed
                return true
            }
            fuse_reply_buf(req, buffer, used)
        } catch {
            Reply.error(req, error)
        }
    }
}
