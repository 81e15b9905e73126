import Glibc
import Synchronization

/// `--access-log`: one JSON object per line, written by a thread of its own. Request threads
/// only append a finished line to a bounded queue: the queue's lock is held for an append (or,
/// by the writer, for swapping the batch out), never across a write(2), and is taken only on
/// the rare events logged (a first read, a refusal, a generation), never on an ordinary READ.
/// The writer wakes every 100 ms (or when the queue is a quarter full) and writes what
/// queued in one write(2). A full queue drops the line and counts it; the writer then logs
/// the loss as one line.
public final class AccessLog: @unchecked Sendable {
    // @unchecked: `fd` and `thread` are touched only by the writer thread (and by stop(),
    // after joining it); everything else is a Mutex or an atomic.
    public let path: String
    public let capacity: Int
    private let queue = Mutex<[String]>([])
    private let pendingLost = Atomic<UInt64>(0)
    /// Lines dropped because the queue was full, since the log was opened.
    public let lostTotal = Atomic<UInt64>(0)
    /// Lines written.
    public let written = Atomic<UInt64>(0)
    private let reopenRequested = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let wake: UnsafeMutablePointer<sem_t>
    private var fd: Int32 = -1
    private var thread = pthread_t()
    private var started = false

    public struct Failure: Error, CustomStringConvertible { public var description: String }

    /// Opens (creates, mode 0640) `path` now, so that a log that cannot be written stops the
    /// mount before it is made.
    public init(path: String, capacity: Int = 65_536) throws(Failure) {
        self.path = path
        self.capacity = capacity
        wake = .allocate(capacity: 1)
        sem_init(wake, 0, 0)
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            sem_destroy(wake)
            wake.deallocate()
            throw Failure(description: "cannot write the access log '\(path)': \(reason)")
        }
    }

    deinit {
        stop()
        sem_destroy(wake)
        wake.deallocate()
    }

    /// Queues one line (a JSON object without its newline). Never blocks on I/O; drops the
    /// line, counted, when the writer is `capacity` lines behind.
    public func append(_ line: String) {
        let (queued, count) = queue.withLock { lines -> (Bool, Int) in
            guard lines.count < capacity else { return (false, lines.count) }
            lines.append(line)
            return (true, lines.count)
        }
        if !queued {
            pendingLost.wrappingAdd(1, ordering: .relaxed)
            lostTotal.wrappingAdd(1, ordering: .relaxed)
        }
        // The writer wakes by itself every `period`; waking it for every line would cost a
        // context switch and a write(2) per line (measured: twice the daemon's CPU time for
        // a cold read of 1000 small layers). Only a queue filling up calls it early.
        if count >= capacity / 4 { sem_post(wake) }
    }

    /// Reopens the file (SIGHUP: logrotate moved it). Lines queued before go to the old
    /// file or the new one, none is lost.
    public func reopen() {
        reopenRequested.store(true, ordering: .releasing)
        sem_post(wake)
    }

    public func start() {
        guard !started else { return }
        started = true
        let me = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { arg in
            let log = Unmanaged<AccessLog>.fromOpaque(arg!).takeRetainedValue()
            Signals.blockAll()
            log.writerLoop()
            return nil
        }, me)
    }

    /// Writes what is queued, then ends the writer thread and closes the file.
    public func stop() {
        if started {
            started = false
            stopping.store(true, ordering: .releasing)
            sem_post(wake)
            pthread_join(thread, nil)
        }
        if fd >= 0 { close(fd); fd = -1 }
    }

    /// How long a line may wait in the queue: the writer's own pace.
    static let period: Int = 100_000_000   // ns

    private func writerLoop() {
        while true {
            var deadline = timespec()
            clock_gettime(CLOCK_REALTIME, &deadline)
            deadline.tv_nsec += AccessLog.period
            if deadline.tv_nsec >= 1_000_000_000 { deadline.tv_sec += 1; deadline.tv_nsec -= 1_000_000_000 }
            _ = sem_timedwait(wake, &deadline)
            // Drain the semaphore's other posts: one pass writes everything queued.
            while sem_trywait(wake) == 0 {}
            if reopenRequested.exchange(false, ordering: .acquiringAndReleasing) {
                let fresh = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
                if fresh >= 0 {
                    // Flush what was queued before the signal into the old file first.
                    flush()
                    if fd >= 0 { close(fd) }
                    fd = fresh
                }
            }
            flush()
            if stopping.load(ordering: .acquiring) {
                flush()
                return
            }
        }
    }

    private func flush() {
        let lines = queue.withLock { lines -> [String] in
            let out = lines
            lines.removeAll(keepingCapacity: true)
            return out
        }
        var text = ""
        for line in lines { text += line; text += "\n" }
        let lost = pendingLost.exchange(0, ordering: .relaxed)
        if lost > 0 { text += AccessLog.line("lost", [("lines", .integer(lost))]) + "\n" }
        guard !text.isEmpty, fd >= 0 else { return }
        var bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            done += n
        }
        written.wrappingAdd(UInt64(lines.count + (lost > 0 ? 1 : 0)), ordering: .relaxed)
    }

    // MARK: - Lines

    public enum Value {
        case integer(UInt64)
        case string(String)
    }

    /// `{"time": "...", "event": EVENT, ...fields}`, in the order given. Built as bytes: a
    /// first read formats one line on the request's thread, and String concatenation cost
    /// more than the rest of the request (measured with perf on a cold read of 1000 layers).
    public static func line(_ event: String, _ fields: [(String, Value)]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(320)
        out += Array("{\"time\":\"".utf8)
        appendTime(&out)
        out += Array("\",\"event\":".utf8)
        appendQuoted(&out, event)
        for (key, value) in fields {
            out.append(UInt8(ascii: ","))
            appendQuoted(&out, key)
            out.append(UInt8(ascii: ":"))
            switch value {
            case .integer(let n): out += Array(String(n).utf8)
            case .string(let s): appendQuoted(&out, s)
            }
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    /// A JSON string literal, as JSONText.quote writes it, straight into bytes.
    static func appendQuoted(_ out: inout [UInt8], _ s: String) {
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case UInt8(ascii: "\n"): out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case UInt8(ascii: "\r"): out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case UInt8(ascii: "\t"): out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0..<0x20:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                out += [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(b >> 4)], hex[Int(b & 0xF)]]
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// RFC 3339, UTC, milliseconds: 2026-11-29T15:20:01.123Z.
    public static func now() -> String {
        var out: [UInt8] = []
        appendTime(&out)
        return String(decoding: out, as: UTF8.self)
    }

    static func appendTime(_ out: inout [UInt8]) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var p = tm()
        gmtime_r(&t, &p)
        func digits(_ v: Int32, _ n: Int) {
            var d = [UInt8](repeating: UInt8(ascii: "0"), count: n)
            var v = v
            for i in stride(from: n - 1, through: 0, by: -1) { d[i] = UInt8(ascii: "0") + UInt8(v % 10); v /= 10 }
            out += d
        }
        digits(p.tm_year + 1900, 4); out.append(UInt8(ascii: "-")); digits(p.tm_mon + 1, 2); out.append(UInt8(ascii: "-"))
        digits(p.tm_mday, 2); out.append(UInt8(ascii: "T")); digits(p.tm_hour, 2); out.append(UInt8(ascii: ":"))
        digits(p.tm_min, 2); out.append(UInt8(ascii: ":")); digits(p.tm_sec, 2); out.append(UInt8(ascii: "."))
        digits(Int32(ts.tv_nsec / 1_000_000), 3); out.append(UInt8(ascii: "Z"))
    }

    /// The process name the kernel keeps (/proc/PID/comm), "" when it has gone.
    static func processName(_ pid: pid_t) -> String {
        let fd = open("/proc/\(pid)/comm", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return "" }
        var end = n
        if buffer[end - 1] == UInt8(ascii: "\n") { end -= 1 }
        return String(decoding: buffer[0..<end], as: UTF8.self)
    }
}

/// errno names as <errno.h> spells them, for logs and metric labels.
public enum ErrnoName {
    static let names: [Int32: String] = [
        EPERM: "EPERM", ENOENT: "ENOENT", EIO: "EIO", E2BIG: "E2BIG", EBADF: "EBADF", EAGAIN: "EAGAIN",
        ENOMEM: "ENOMEM", EACCES: "EACCES", EFAULT: "EFAULT", EBUSY: "EBUSY", EEXIST: "EEXIST", EXDEV: "EXDEV",
        ENOTDIR: "ENOTDIR", EISDIR: "EISDIR", EINVAL: "EINVAL", EFBIG: "EFBIG", ENOSPC: "ENOSPC", EROFS: "EROFS",
        EMLINK: "EMLINK", ERANGE: "ERANGE", ENAMETOOLONG: "ENAMETOOLONG", ENOSYS: "ENOSYS", ENOTEMPTY: "ENOTEMPTY",
        ENODATA: "ENODATA", EOPNOTSUPP: "EOPNOTSUPP", ENOTCONN: "ENOTCONN", EINTR: "EINTR", EDQUOT: "EDQUOT",
    ]

    public static func name(_ errno: Int32) -> String { names[errno] ?? "E\(errno)" }
}

public enum Signals {
    /// For the daemon's own threads started before its signal handling is set up: a signal
    /// must reach libfuse's handlers or the SIGHUP listener, never a thread that ignores it
    /// (libfuse's SIGHUP handler run on it would end the session).
    public static func blockAll() {
        var set = sigset_t()
        sigfillset(&set)
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }
}
