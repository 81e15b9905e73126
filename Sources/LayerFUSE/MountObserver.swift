import CFuse
import Glibc
import LayerFSCore
import Synchronization

/// What the binding sees of each request, for the counters and the access log. Three hooks,
/// called from the trampolines: `begin` (every request, through `MountContext.trace`),
/// `failed` (every error reply, through `Reply.error`) and `served` (a READ's reply).
///
/// No lock on the read path: the counters are atomics, the request in flight is kept per
/// thread (pthread-specific: each worker thread handles one request at a time, start to
/// reply), and the access log's first-read filter is a table of atomics.
public final class MountObserver: @unchecked Sendable {
    // @unchecked: `key` is written once in init; the rest is Sendable.
    public let counters = MountCounters()
    public let accessLog: AccessLog?
    let fs: FileSystem
    private var key = pthread_key_t()
    /// Only with an access log: its table takes 512 KiB.
    let firstReads: FirstReadFilter?
    /// Set by the first OPEN answered (--open-calls): from then on each open is logged, and
    /// READs are not (the kernel's page cache hides repeated READs, never an OPEN).
    private let opensSeen = Atomic<Bool>(false)
    /// When the daemon started serving (CLOCK_MONOTONIC ns), for uptime.
    public let startedAt = MountObserver.monotonic()

    public init(fs: FileSystem, accessLog: AccessLog? = nil) {
        self.fs = fs
        self.accessLog = accessLog
        firstReads = accessLog == nil ? nil : FirstReadFilter()
        pthread_key_create(&key) { scope in
            if let scope { Unmanaged<RequestScope>.fromOpaque(scope).release() }
        }
    }

    deinit { pthread_key_delete(key) }

    /// The request this thread is handling.
    final class RequestScope {
        var operation = Operation.other
        var slot = 0
        var node: UInt64 = 0
        var started: UInt64 = 0
        /// The last process name this thread read from /proc, kept for a second: a process
        /// reading many layers costs one /proc read, not one per layer. A second is short
        /// enough that an exec (same pid, new name) shows soon.
        var namedPid: pid_t = -1
        var name = ""
        var namedAt: UInt64 = 0
    }

    func processName(_ pid: pid_t) -> String {
        let s = scope()
        let now = MountObserver.monotonic()
        if s.namedPid == pid && now &- s.namedAt < 1_000_000_000 { return s.name }
        s.name = AccessLog.processName(pid)
        s.namedPid = pid
        s.namedAt = now
        return s.name
    }

    private func scope() -> RequestScope {
        if let p = pthread_getspecific(key) { return Unmanaged<RequestScope>.fromOpaque(p).takeUnretainedValue() }
        let scope = RequestScope()
        pthread_setspecific(key, Unmanaged.passRetained(scope).toOpaque())
        return scope
    }

    static func monotonic() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    // MARK: - Hooks

    /// A request arrived (`trace`'s name for it, and its node).
    func begin(_ traceName: String, _ node: UInt64) {
        let s = scope()
        s.operation = Operation(traceName: traceName)
        s.node = node
        s.slot = NodeID(rawValue: node).slot
        s.started = s.operation == .read ? MountObserver.monotonic() : 0
        counters.request(s.operation, slot: s.slot)
    }

    /// An error reply. Refusals (EROFS, EACCES, EPERM) also go to the access log.
    func failed(_ req: fuse_req_t, _ errno: Int32) {
        let s = scope()
        counters.error(errno, slot: s.slot)
        if s.operation == .read { counters.read(bytes: 0, nanoseconds: MountObserver.monotonic() &- s.started, slot: s.slot) }
        guard let accessLog, errno == EROFS || errno == EACCES || errno == EPERM else { return }
        let caller = fuse_req_ctx(req)?.pointee
        var fields: [(String, AccessLog.Value)] = [
            ("operation", .string(s.operation.name)), ("errno", .string(ErrnoName.name(errno))),
        ]
        fields += callerFields(caller)
        fields += nodeFields(NodeID(rawValue: s.node))
        accessLog.append(AccessLog.line("refused", fields))
    }

    /// A READ about to be answered with `count` bytes: called before the reply, while the
    /// request (and the reader, whose /proc entry names it) still exist.
    func served(_ req: fuse_req_t?, _ node: UInt64, _ count: Int) {
        let s = scope()
        counters.read(bytes: count, nanoseconds: MountObserver.monotonic() &- s.started, slot: s.slot)
        guard let accessLog, !opensSeen.load(ordering: .relaxed), let caller = fuse_req_ctx(req)?.pointee else { return }
        guard firstReads?.firstTime(pid: caller.pid, node: node) == true else { return }
        accessLog.append(AccessLog.line("read", callerFields(caller) + nodeFields(NodeID(rawValue: node)) + [("seen", .string("read"))]))
    }

    /// An OPEN of a layer answered (only with --open-calls, else the kernel sends none): logged
    /// as the process's read of the layer, once per open, whether or not its READs reach the
    /// daemon past the page cache.
    func opened(_ req: fuse_req_t?, _ node: UInt64) {
        guard let accessLog, let caller = fuse_req_ctx(req)?.pointee else { return }
        if !opensSeen.load(ordering: .relaxed) { opensSeen.store(true, ordering: .relaxed) }
        accessLog.append(AccessLog.line("read", callerFields(caller) + nodeFields(NodeID(rawValue: node)) + [("seen", .string("open"))]))
    }

    // MARK: - Lines

    func callerFields(_ caller: fuse_ctx?) -> [(String, AccessLog.Value)] {
        guard let caller else { return [] }
        return [("uid", .integer(UInt64(caller.uid))), ("gid", .integer(UInt64(caller.gid))),
                ("pid", .integer(UInt64(max(0, caller.pid)))), ("process", .string(processName(caller.pid)))]
    }

    func nodeFields(_ node: NodeID) -> [(String, AccessLog.Value)] {
        if let layer = fs.describeLayer(node) {
            return [("dimension", .string(layer.dimension)), ("layer", .integer(UInt64(layer.layer))),
                    ("generation", .string(layer.generation))]
        }
        if node.isDimension, let path = fs.dimensionPath(slot: node.slot) { return [("dimension", .string(path))] }
        return []
    }

    /// The access log's line for a generation served or refused (FileSystem's generationEvents).
    public static func line(for event: GenerationEvent) -> String {
        switch event.outcome {
        case .served(let generation, let layers):
            return AccessLog.line("generation", [("dimension", .string(event.dimension)), ("outcome", .string("served")),
                                                 ("generation", .string(generation)), ("layers", .integer(UInt64(layers)))])
        case .rejected(let error):
            return AccessLog.line("generation", [("dimension", .string(event.dimension)), ("outcome", .string("rejected")),
                                                 ("error", .string(error))])
        }
    }
}

/// Which (process, layer node) pairs have been logged: an open-addressed table of 64-bit
/// fingerprints, claimed with compare-and-swap, so that a READ never waits for a lock here. A
/// layer node id carries its content's version, so a new generation of a layer is a new pair.
/// Full (65 536 pairs, 16 probes), it overwrites: a pair may then be logged again, never
/// left out. A pid reused by a new process that reads a layer the old one read is not logged
/// again until the table overwrites it.
final class FirstReadFilter: @unchecked Sendable {
    // @unchecked: the cells are only reached through atomics.
    static let size = 1 << 16
    static let probes = 16
    private let cells: UnsafeMutablePointer<Atomic<UInt64>>

    init() {
        cells = .allocate(capacity: FirstReadFilter.size)
        for i in 0..<FirstReadFilter.size { (cells + i).initialize(to: Atomic(0)) }
    }

    deinit {
        cells.deinitialize(count: FirstReadFilter.size)
        cells.deallocate()
    }

    static func fingerprint(pid: pid_t, node: UInt64) -> UInt64 {
        // splitmix64 of the pair, never 0 (an empty cell).
        var z = node ^ (UInt64(UInt32(bitPattern: pid)) &* 0x9E37_79B9_7F4A_7C15)
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return z | 1
    }

    /// True the first time the pair is seen (the caller logs it).
    func firstTime(pid: pid_t, node: UInt64) -> Bool {
        let fp = FirstReadFilter.fingerprint(pid: pid, node: node)
        let start = Int(truncatingIfNeeded: fp >> 16)
        for probe in 0..<FirstReadFilter.probes {
            let i = (start &+ probe) & (FirstReadFilter.size - 1)
            let current = cells[i].load(ordering: .relaxed)
            if current == fp { return false }
            if current == 0 {
                let (won, now) = cells[i].compareExchange(expected: 0, desired: fp, ordering: .relaxed)
                if won { return true }
                if now == fp { return false }
            }
        }
        cells[start & (FirstReadFilter.size - 1)].store(fp, ordering: .relaxed)
        return true
    }
}
