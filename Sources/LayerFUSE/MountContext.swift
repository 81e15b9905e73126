import CFuse
import Glibc
import LayerFSCore
import Logging
import Synchronization

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
    /// The readahead the mount will be given, in bytes: the kernel caps the mount's readahead
    /// at what the INIT reply says, so the reply must say at least that much.
    let readahead: UInt32
    let onReady: @Sendable () -> Void
    /// Pushes the next small layers into the kernel's cache ahead of a reader (nil: off).
    let prefetcher: Prefetcher?
    /// Whether the kernel offered FUSE_CAP_NO_OPEN_SUPPORT (set once, in INIT, before any
    /// OPEN can arrive). Without it an ENOSYS answer to OPEN fails the open.
    private let noOpenOffered = Atomic<Bool>(false)
    /// Counters and access log (MountObserver.swift): `trace` is its per-request hook.
    public let observer: MountObserver
    /// The io_uring transport's handle while it is installed (UringTransport.swift): reached
    /// from libfuse's custom io callbacks, which only get this context.
    let uringHandle = Atomic<OpaquePointer?>(nil)

    public init(fs: FileSystem, logger: Logger, debug: Bool, maxRequest: UInt32 = 1 << 20, readahead: UInt32 = 0,
                observer: MountObserver? = nil, prefetch: Prefetcher.Settings? = nil,
                onReady: @escaping @Sendable () -> Void) {
        self.observer = observer ?? MountObserver(fs: fs)
        self.readahead = readahead
        self.fs = fs
        self.cache = fs.configuration.cache
        self.logger = logger
        self.debug = debug
        self.maxRequest = maxRequest
        self.onReady = onReady
        let counters = self.observer.counters
        prefetcher = prefetch.flatMap {
            guard $0.budget > 0 || $0.randomBudget > 0 else { return nil }
            return Prefetcher(fs: fs, logger: logger, settings: $0) { node, bytes in counters.pushed(bytes: bytes, slot: node.slot) }
        }
    }

    /// Answer OPEN with ENOSYS (no-open): asked for by the cache policy and offered by the kernel.
    var answersNoOpen: Bool { cache.noOpen && noOpenOffered.load(ordering: .acquiring) }

    /// Called once at the start of every request: the counters' hook as well as the debug log.
    func trace(_ op: String, _ ino: UInt64, _ detail: @autoclosure () -> String = "") {
        observer.begin(op, ino)
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
        noOpenOffered.store(capable & UInt32(FUSE_CAP_NO_OPEN_SUPPORT) != 0, ordering: .releasing)
        conn.pointee.want = want
        conn.pointee.max_write = maxRequest
        conn.pointee.max_readahead = max(maxRequest, readahead)
        logger.info("connection ready: protocol \(conn.pointee.proto_major).\(conn.pointee.proto_minor), max request \(maxRequest) bytes")
        onReady()
    }

    func readDirectory(_ req: fuse_req_t?, _ ino: fuse_ino_t, size: Int, offset: off_t, plus: Bool) {
        trace(plus ? "READDIRPLUS" : "READDIR", ino, "offset=\(offset)")
        var reply = DirectoryReply(capacity: size, plus: plus, cache: cache)
        do throws(FSError) {
            var firstLayer: NodeID?
            try fs.readDirectory(NodeID(rawValue: ino), from: Int(max(0, offset)), plus: plus) { item, next in
                let added = reply.add(item, next: next)
                if added, firstLayer == nil, let node = item.entry?.node, node.isLayer { firstLayer = node }
                return added
            }
            reply.withBytes { _ = fuse_reply_buf(req, $0.baseAddress?.assumingMemoryBound(to: CChar.self), $0.count) }
            // The start of a dimension's listing: its first small layers go ahead of the reader.
            if plus, offset <= 2, let firstLayer { prefetcher?.listed(firstLayer) }
        } catch {
            Reply.error(req, error)
        }
    }
}
