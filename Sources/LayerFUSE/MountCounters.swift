import Glibc
import Synchronization

/// The requests the binding counts, by the name `MountContext.trace` is given.
public enum Operation: Int, CaseIterable, Sendable {
    case lookup, forget, batchForget, getattr, open, read, release, opendir, readdir, readdirplus, releasedir, statfs
    case getxattr, listxattr, setattr, mknod, mkdir, unlink, rmdir, symlink, rename, link, write, create
    case setxattr, removexattr, fallocate, flush, fsync, fsyncdir, other

    /// The label in metrics and status: lower case, as the kernel's opcodes read.
    public var name: String {
        switch self {
        case .batchForget: return "batch_forget"
        default: return String(describing: self)
        }
    }

    /// Trace names ("READ", "READDIRPLUS"...) to operations: one dictionary lookup per request.
    static let byTraceName: [String: Operation] = {
        var out: [String: Operation] = [:]
        for op in Operation.allCases { out[op.name.uppercased().replacingOccurrences(of: "_", with: "")] = op }
        out["BATCH_FORGET"] = .batchForget
        return out
    }()

    init(traceName: String) { self = Operation.byTraceName[traceName] ?? .other }
}

/// Counters of one mount, per dimension, kept with atomics only: a READ adds to them without
/// taking any lock, so counting never makes one request wait for another.
///
/// Layout: one block of 64-bit cells per dimension slot (slot 0: the root and proto/), made
/// on a slot's first request and published with a compare-and-swap into a directory of
/// 65 536 pointers (node ids carry a 16-bit slot). The directory is one anonymous mapping,
/// so only the pages of slots in use take memory. Blocks are never freed while the mount runs.
public final class MountCounters: @unchecked Sendable {
    // @unchecked: the raw memory below is only reached through atomics.

    /// Upper bounds of the READ latency buckets, in seconds (Prometheus' `le`), from the
    /// daemon's entry into the handler to its reply. The last bucket is +Inf.
    public static let latencyBounds: [Double] = [0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5,
                                                 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
    static let latencyBoundsNanoseconds: [UInt64] = latencyBounds.map { UInt64(($0 * 1e9).rounded()) }
    /// errno values counted one by one; larger ones share the last cell.
    public static let errnoCells = 134

    enum Cell {
        static let requests = 0
        static let errors = requests + Operation.allCases.count
        static let bytesRead = errors + errnoCells
        static let bytesPushed = bytesRead + 1
        static let latencyBuckets = bytesPushed + 1
        static let latencySum = latencyBuckets + latencyBounds.count + 1
        static let latencyMax = latencySum + 1
        static let count = latencyMax + 1
    }

    static let slotCount = 1 << 16
    private let directory: UnsafeMutablePointer<Atomic<UInt>>
    private let directoryBytes = MountCounters.slotCount * MemoryLayout<Atomic<UInt>>.stride
    /// The highest slot with a block: snapshots look no further.
    private let highestSlot = Atomic<Int>(0)

    public init() {
        let raw = mmap(nil, directoryBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        // Zero-filled: every pointer starts as 0, which is an Atomic<UInt>(0).
        precondition(raw != MAP_FAILED && raw != nil, "cannot map the counter directory")
        directory = raw!.bindMemory(to: Atomic<UInt>.self, capacity: MountCounters.slotCount)
    }

    deinit {
        for slot in 0...highestSlot.load(ordering: .acquiring) {
            if let block = existingBlock(slot) {
                block.deinitialize(count: Cell.count)
                block.deallocate()
            }
        }
        munmap(directory, directoryBytes)
    }

    private func existingBlock(_ slot: Int) -> UnsafeMutablePointer<Atomic<UInt64>>? {
        UnsafeMutablePointer(bitPattern: directory[slot].load(ordering: .acquiring))
    }

    /// The block of `slot`, made on first use. Two threads making it at once: one wins the
    /// compare-and-swap, the other frees its copy.
    private func block(_ slot: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        let slot = slot & (MountCounters.slotCount - 1)
        if let block = existingBlock(slot) { return block }
        let fresh = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: Cell.count)
        for i in 0..<Cell.count { (fresh + i).initialize(to: Atomic(0)) }
        let (won, current) = directory[slot].compareExchange(expected: 0, desired: UInt(bitPattern: fresh),
                                                             ordering: .acquiringAndReleasing)
        if !won {
            fresh.deinitialize(count: Cell.count)
            fresh.deallocate()
            return UnsafeMutablePointer(bitPattern: current)!
        }
        var highest = highestSlot.load(ordering: .relaxed)
        while slot > highest {
            let (done, now) = highestSlot.compareExchange(expected: highest, desired: slot, ordering: .relaxed)
            if done { break }
            highest = now
        }
        return fresh
    }

    // MARK: - Counting (any thread, no lock)

    func request(_ op: Operation, slot: Int) {
        block(slot)[Cell.requests + op.rawValue].wrappingAdd(1, ordering: .relaxed)
    }

    func error(_ errno: Int32, slot: Int) {
        let cell = Int(max(0, min(errno, Int32(MountCounters.errnoCells - 1))))
        block(slot)[Cell.errors + cell].wrappingAdd(1, ordering: .relaxed)
    }

    func read(bytes: Int, nanoseconds: UInt64, slot: Int) {
        let b = block(slot)
        b[Cell.bytesRead].wrappingAdd(UInt64(bytes), ordering: .relaxed)
        var bucket = MountCounters.latencyBoundsNanoseconds.count
        for (i, bound) in MountCounters.latencyBoundsNanoseconds.enumerated() where nanoseconds <= bound {
            bucket = i
            break
        }
        b[Cell.latencyBuckets + bucket].wrappingAdd(1, ordering: .relaxed)
        b[Cell.latencySum].wrappingAdd(nanoseconds, ordering: .relaxed)
        var max = b[Cell.latencyMax].load(ordering: .relaxed)
        while nanoseconds > max {
            let (done, now) = b[Cell.latencyMax].compareExchange(expected: max, desired: nanoseconds, ordering: .relaxed)
            if done { break }
            max = now
        }
    }

    /// Bytes the prefetcher stored into the kernel's cache (FUSE_NOTIFY_STORE): served to
    /// readers without a READ, so `bytesRead` alone undercounts what the mount delivered.
    public func pushed(bytes: Int, slot: Int) {
        block(slot)[Cell.bytesPushed].wrappingAdd(UInt64(bytes), ordering: .relaxed)
    }

    // MARK: - Reading (status, metrics)

    /// The counters of every slot that has any, by slot. Each cell is read atomically; the
    /// cells of a snapshot are not one instant (a READ may land between two of them).
    public func snapshot() -> [Int: CounterSnapshot] {
        var out: [Int: CounterSnapshot] = [:]
        for slot in 0...highestSlot.load(ordering: .acquiring) {
            guard let b = existingBlock(slot) else { continue }
            var s = CounterSnapshot()
            for op in Operation.allCases { s.requests[op.rawValue] = b[Cell.requests + op.rawValue].load(ordering: .relaxed) }
            for e in 0..<MountCounters.errnoCells {
                let n = b[Cell.errors + e].load(ordering: .relaxed)
                if n > 0 { s.errors[Int32(e)] = n }
            }
            s.bytesRead = b[Cell.bytesRead].load(ordering: .relaxed)
            s.bytesPushed = b[Cell.bytesPushed].load(ordering: .relaxed)
            for i in 0...MountCounters.latencyBounds.count { s.latencyBuckets[i] = b[Cell.latencyBuckets + i].load(ordering: .relaxed) }
            s.latencySumNanoseconds = b[Cell.latencySum].load(ordering: .relaxed)
            s.latencyMaxNanoseconds = b[Cell.latencyMax].load(ordering: .relaxed)
            out[slot] = s
        }
        return out
    }
}

/// One slot's counters at one moment (or a sum of several slots').
public struct CounterSnapshot: Sendable {
    public var requests = [UInt64](repeating: 0, count: Operation.allCases.count)
    /// By errno value.
    public var errors: [Int32: UInt64] = [:]
    public var bytesRead: UInt64 = 0
    /// Bytes pushed ahead into the kernel's cache by the prefetcher.
    public var bytesPushed: UInt64 = 0
    /// Per bucket, not cumulative; the last is above every bound.
    public var latencyBuckets = [UInt64](repeating: 0, count: MountCounters.latencyBounds.count + 1)
    public var latencySumNanoseconds: UInt64 = 0
    public var latencyMaxNanoseconds: UInt64 = 0

    public init() {}

    public var reads: UInt64 { latencyBuckets.reduce(0, +) }

    public mutating func add(_ other: CounterSnapshot) {
        for i in requests.indices { requests[i] &+= other.requests[i] }
        for (e, n) in other.errors { errors[e, default: 0] &+= n }
        bytesRead &+= other.bytesRead
        bytesPushed &+= other.bytesPushed
        for i in latencyBuckets.indices { latencyBuckets[i] &+= other.latencyBuckets[i] }
        latencySumNanoseconds &+= other.latencySumNanoseconds
        latencyMaxNanoseconds = max(latencyMaxNanoseconds, other.latencyMaxNanoseconds)
    }

    /// The upper bound (seconds) of the bucket holding quantile `q` (0...1) of the READs: a
    /// bound, not an interpolation, so "p99 ≤ 250 µs" is what it says. The top bucket
    /// answers the maximum seen. Nil without READs.
    public func latencyQuantile(_ q: Double) -> Double? {
        let total = reads
        guard total > 0 else { return nil }
        let rank = UInt64((Double(total) * q).rounded(.up))
        var seen: UInt64 = 0
        for (i, n) in latencyBuckets.enumerated() {
            seen += n
            if seen >= max(rank, 1) {
                return i < MountCounters.latencyBounds.count
                    ? min(MountCounters.latencyBounds[i], Double(latencyMaxNanoseconds) / 1e9) : Double(latencyMaxNanoseconds) / 1e9
            }
        }
        return Double(latencyMaxNanoseconds) / 1e9
    }
}
