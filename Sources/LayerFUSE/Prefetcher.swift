import CFuse
import Glibc
import LayerFSCore
import Logging
import Synchronization

/// Pushes the next small layers of a dimension into the kernel's page cache while a reader
/// walks it in layer order (`cat D/*`, `rsync`, `sha256sum -c`), so that their reads are page
/// cache hits instead of READ round trips, each of which costs a cross-CPU wake-up of the
/// daemon and of the reader (the cost the first round measured).
///
/// A READ at offset 0 of a small layer is a hint; a thread of its own turns hints into
/// FUSE_NOTIFY_STORE messages (`fuse_lowlevel_notify_store`) for the layers after it that
/// the kernel has inodes for, up to `budget` bytes per hint. Never from the request thread:
/// the kernel locks the page-cache pages it stores into, and a page may be locked by a READ
/// that only a worker's reply unlocks. The handler only queues (a lock and a semaphore post).
///
/// Memory: at most `budget` bytes of page cache ahead of the last READ (the pushed pages are
/// ordinary clean pages of the layer files, reclaimed like any other). Large layers (over
/// `largest`) are neither hints nor pushed: their own readahead already streams them.
public final class Prefetcher: @unchecked Sendable {
    // @unchecked: `session` is set once before the loop runs and read only by the thread;
    // the queue and marks are behind `state`; the semaphore is thread-safe by itself.
    public struct Settings: Sendable {
        /// Bytes pushed per hint; 0 turns prefetching off.
        public var budget: UInt64
        /// Layers larger than this are not pushed after a smaller one.
        public var largest: UInt64
        /// Bytes of one large layer pushed while it is read at random (small READs away from
        /// its start), in `chunk`s, one per READ that missed the cache; 0 turns this off.
        public var randomBudget: UInt64
        public var chunk: UInt64 = 4 << 20
        /// A READ of at most this many bytes is a random read (sequential reads come with
        /// the kernel's readahead, 128 KiB and more).
        public var randomRead: Int = 16 * 1024

        public init(budget: UInt64, largest: UInt64 = 64 * 1024, randomBudget: UInt64 = 0) {
            self.budget = budget
            self.largest = largest
            self.randomBudget = randomBudget
        }
    }

    enum Hint: Equatable {
        /// Small layers from this one on, in id order (the start of a listing).
        case from(NodeID)
        /// Small layers after this one, in id order.
        case after(NodeID)
        /// The rest of this large layer.
        case rest(NodeID)
    }

    struct State {
        var queue: [Hint] = []
        /// Per large layer read at random: how far it has been pushed.
        var pushed: [NodeID: UInt64] = [:]
        /// Per dimension slot: the last layer id sent, and the node it was sent after, so a
        /// hint inside the range already pushed continues where the push ended.
        var sent: [Int: (from: UInt32, upTo: UInt32)] = [:]
        var stopping = false
        var running = false
    }

    let settings: Settings
    private let fs: FileSystem
    private let logger: Logger
    private let state = Mutex(State())
    private let wake: UnsafeMutablePointer<sem_t>
    private let done: UnsafeMutablePointer<sem_t>
    private var session: OpaquePointer?
    /// Counters for the log line at the end: hints taken, layers and bytes stored, failures.
    private let hints = Atomic<Int>(0), stored = Atomic<Int>(0), storedBytes = Atomic<Int>(0), failures = Atomic<Int>(0)
    /// Nanoseconds spent sending.
    private let busy = Atomic<Int>(0)
    private static let queueLimit = 64

    /// Told of each store that the kernel took (the mount's counters).
    private let onStored: @Sendable (NodeID, Int) -> Void

    public init(fs: FileSystem, logger: Logger, settings: Settings, onStored: @escaping @Sendable (NodeID, Int) -> Void = { _, _ in }) {
        self.fs = fs
        self.onStored = onStored
        self.logger = logger
        self.settings = settings
        wake = .allocate(capacity: 1)
        done = .allocate(capacity: 1)
        sem_init(wake, 0, 0)
        sem_init(done, 0, 0)
    }

    deinit {
        sem_destroy(wake)
        sem_destroy(done)
        wake.deallocate()
        done.deallocate()
    }

    /// Starts the thread. `session` must outlive `stop()`.
    func start(session: OpaquePointer) {
        self.session = session
        state.withLock { $0.running = true }
        BackgroundThread.start { [self] in run() }
    }

    /// Ends the thread and waits for it, at most `timeout` seconds (nil: as long as it takes).
    /// Returns true once the thread is gone: no message is sent after that, and the session
    /// may be destroyed. False when a send is still blocked: the kernel is holding a page
    /// the prefetcher stores into locked for a READ that no worker will answer any more (the
    /// loop ended on a signal with requests queued); aborting the connection releases it.
    @discardableResult
    func stop(timeout: Double? = nil) -> Bool {
        let wasRunning = state.withLock { s -> Bool in
            s.stopping = true
            return s.running
        }
        guard wasRunning else { return true }
        sem_post(wake)
        if let timeout {
            var deadline = timespec()
            clock_gettime(CLOCK_REALTIME, &deadline)
            let nanoseconds = Int(timeout * 1e9) + deadline.tv_nsec
            deadline.tv_sec += nanoseconds / 1_000_000_000
            deadline.tv_nsec = nanoseconds % 1_000_000_000
            while sem_timedwait(done, &deadline) != 0 {
                if errno == ETIMEDOUT { return false }
            }
        } else {
            while sem_wait(done) != 0 && errno == EINTR {}
        }
        state.withLock { $0.running = false }
        logger.info("prefetch: \(hints.load(ordering: .relaxed)) hints, \(stored.load(ordering: .relaxed)) layers (\(storedBytes.load(ordering: .relaxed)) bytes) stored, \(failures.load(ordering: .relaxed)) refused, \(busy.load(ordering: .relaxed) / 1000) µs sending")
        return true
    }

    /// From a READ handler: the reader just read `node` from `offset`, `count` bytes.
    /// From a READDIRPLUS handler: the reply that starts a dimension's listing handed out
    /// `node` first (so the kernel now has inodes for its first layers).
    func listed(_ node: NodeID) {
        guard settings.budget > 0 else { return }
        let queued = state.withLock { s -> Bool in
            guard s.running, !s.stopping, s.queue.count < Prefetcher.queueLimit, !s.queue.contains(.from(node)) else { return false }
            s.queue.append(.from(node))
            return true
        }
        if queued { sem_post(wake) }
    }

    func hint(_ node: NodeID, offset: off_t, count: Int) {
        let hint: Hint
        if offset == 0 && UInt64(count) <= settings.largest && settings.budget > 0 {
            hint = .after(node)
        } else if offset > 0 && count <= settings.randomRead && settings.randomBudget > 0 {
            hint = .rest(node)
        } else {
            return
        }
        let queued = state.withLock { s -> Bool in
            guard s.running, !s.stopping, s.queue.count < Prefetcher.queueLimit, !s.queue.contains(hint) else { return false }
            switch hint {
            case .after(let node):
                // Inside what was already pushed after the same node: nothing new to send yet.
                if let mark = s.sent[node.slot], node.layerID > mark.from, node.layerID < mark.upTo { return false }
            case .rest(let node):
                if let pushed = s.pushed[node], pushed >= settings.randomBudget { return false }
            case .from:
                break
            }
            s.queue.append(hint)
            return true
        }
        if queued { sem_post(wake) }
    }

    private func run() {
        defer { sem_post(done) }
        while true {
            while sem_wait(wake) != 0 && errno == EINTR {}
            while let hint = state.withLock({ s -> Hint? in s.stopping || s.queue.isEmpty ? nil : s.queue.removeFirst() }) {
                hints.add(1, ordering: .relaxed)
                switch hint {
                case .from(let node): push(after: node, including: true)
                case .after(let node): push(after: node)
                case .rest(let node): pushRest(of: node)
                }
            }
            if state.withLock({ $0.stopping }) { return }
        }
    }

    private func push(after node: NodeID, including: Bool = false) {
        let previous = state.withLock { $0.sent[node.slot] }
        // Continue after what was sent for the same walk, if the reader is still inside it.
        let after = previous.flatMap { node.layerID >= $0.from && node.layerID <= $0.upTo ? $0.upTo : nil } ?? node.layerID
        guard let batch = fs.layersAfter(node, after: after, including: including && after == node.layerID,
                                         budget: settings.budget, largest: settings.largest),
              let lastID = batch.items.last?.layerID else { return }
        state.withLock { $0.sent[node.slot] = (from: node.layerID, upTo: lastID) }
        send(batch)
    }

    /// The next chunk of a large layer read at random, up to the budget.
    private func pushRest(of node: NodeID) {
        let from = state.withLock { $0.pushed[node] ?? 0 }
        guard from < settings.randomBudget else { return }
        let wanted = min(settings.chunk, settings.randomBudget - from)
        guard let batch = fs.layerPart(node, from: from, count: wanted), let item = batch.items.first else {
            // Pushed to its end already, or no longer the served generation's: no more.
            state.withLock { $0.pushed[node] = settings.randomBudget }
            return
        }
        state.withLock { s in
            // Bounded: a mount reading many large layers at random forgets the oldest marks
            // (at worst a layer is pushed again).
            if s.pushed.count >= 1024 { s.pushed.removeAll() }
            s.pushed[node] = item.size < wanted ? settings.randomBudget : from + item.size
        }
        send(batch)
    }

    private func send(_ batch: PrefetchBatch) {
        var started = timespec()
        clock_gettime(CLOCK_MONOTONIC, &started)
        defer {
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            busy.add((now.tv_sec - started.tv_sec) * 1_000_000_000 + (now.tv_nsec - started.tv_nsec), ordering: .relaxed)
        }
        withExtendedLifetime(batch.generation) {
            for item in batch.items {
                if state.withLock({ $0.stopping }) { return }
                let bytes = batch.bytes(item)
                var vector = fuse_bufvec()
                vector.count = 1
                vector.buf.size = bytes.count
                vector.buf.mem = UnsafeMutableRawPointer(mutating: bytes.baseAddress)
                vector.buf.fd = -1
                let result = fuse_lowlevel_notify_store(session, item.node.rawValue, off_t(item.layerOffset), &vector,
                                                        fuse_buf_copy_flags(rawValue: 0))
                if result == 0 {
                    fs.stored(batch, item)
                    stored.add(1, ordering: .relaxed)
                    storedBytes.add(bytes.count, ordering: .relaxed)
                    onStored(item.node, bytes.count)
                } else {
                    // ENOENT: the kernel forgot the inode meanwhile. Anything else: log once.
                    if failures.add(1, ordering: .relaxed).newValue == 1 && result != -ENOENT {
                        logger.notice("prefetch: notify_store refused: \(String(cString: strerror(-result)))")
                    }
                }
            }
        }
    }
}
