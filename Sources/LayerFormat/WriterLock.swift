import Glibc

/// One writer at a time (spec rules 4-6): an exclusive `flock(2)` on `.NAME.lock` beside the
/// dimension directory (in `consciousness/` or `proto/`), held from before a writer reads the
/// generation it builds on until after its swap. Without it two writers that each read the
/// same generation would each swap in their own successor, and the first one's changes would
/// be lost without a word.
///
/// - The file is created with mode 0644 when absent and never removed: removing it while a
///   writer waits on the old inode would let a third writer lock a new file, so two would run.
/// - The holder writes its pid and host name into it, one line, after taking the lock
///   (truncate, then write), and empties it again before letting go. A waiter that gives up
///   names the holder from it; a file that still names someone when nobody holds the lock was
///   left by a writer that died (`staleHolder`).
/// - Readers never lock. `shared` locks are for a writer's dry run, which only reads: they
///   keep writers out for as long as the reading takes and never write the file.
/// - Over NFS, `flock` maps to byte-range locks of the server (NFSv4), so the rule holds
///   across hosts that mount the same export.
public final class WriterLock: @unchecked Sendable {
    // @unchecked: the descriptor is only changed by `release`, which its owner calls once.
    /// The lock file, as built from the dimension's path (for messages).
    public let path: String
    public let location: DimensionLocation
    public let exclusive: Bool
    private var fd: Int32

    private init(path: String, location: DimensionLocation, exclusive: Bool, fd: Int32) {
        self.path = path
        self.location = location
        self.exclusive = exclusive
        self.fd = fd
    }

    deinit { release() }

    /// `consciousness/.D05.lock` for `consciousness/D05`: hidden, so that no reader takes it
    /// for a dimension, and beside the dimension rather than in it, because a swap replaces
    /// the dimension directory and with it anything inside.
    public static func path(for location: DimensionLocation) -> String {
        let parent = Packer.parentDirectory(of: location.directory)
        let name = "." + location.name + ".lock"
        return parent == "." ? name : (parent.hasSuffix("/") ? parent + name : parent + "/" + name)
    }

    /// Takes the exclusive lock of `location`, waiting at most `wait` seconds (0: one try).
    /// The directory that holds the lock file must exist.
    public static func acquire(_ location: DimensionLocation, wait: Double) throws(WriterLockError) -> WriterLock {
        let path = path(for: location)
        // O_NOFOLLOW: a link planted at the lock's name must not make us truncate its target.
        // O_NONBLOCK: a FIFO there must not hang the open; it is refused below.
        var fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o644)
        if fd >= 0 {
            // The spec's mode whatever the umask: writers of other users read the holder from it.
            _ = fchmod(fd, 0o644)
        } else if errno == EEXIST {
            fd = open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
            // Another user's lock file (0644) can still be locked through a read-only
            // descriptor; only the holder line cannot be written then.
            if fd < 0 && errno == EACCES { fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) }
        }
        guard fd >= 0 else { throw .unusable(SystemCalls.fail(path, "cannot open the writer lock")) }
        let lock = WriterLock(path: path, location: location, exclusive: true, fd: fd)
        try lock.checkRegular()
        try lock.take(LOCK_EX, wait: wait)
        // Truncate first: a shorter line must not leave the end of a longer one behind.
        let line = Array(LockHolder.current.line.utf8)
        if ftruncate(fd, 0) == 0 {
            _ = line.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        }
        return lock
    }

    /// A shared lock of `location`, for reading the current generation without a writer
    /// swapping it meanwhile; nil when there is no lock file (no writer following these rules
    /// has run here, and a dry run creates nothing).
    public static func acquireShared(_ location: DimensionLocation, wait: Double) throws(WriterLockError) -> WriterLock? {
        let path = path(for: location)
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw .unusable(SystemCalls.fail(path, "cannot open the writer lock"))
        }
        let lock = WriterLock(path: path, location: location, exclusive: false, fd: fd)
        try lock.checkRegular()
        try lock.take(LOCK_SH, wait: wait)
        return lock
    }

    /// Lets go: the holder line is emptied first, so that a file naming someone while nobody
    /// holds the lock means a writer that died. Closing the descriptor drops the lock.
    public func release() {
        guard fd >= 0 else { return }
        if exclusive { _ = ftruncate(fd, 0) }
        close(fd)
        fd = -1
    }

    private func checkRegular() throws(WriterLockError) {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .unusable(SystemCalls.fail(path, "cannot examine the writer lock")) }
        guard SystemCalls.isRegular(st) else {
            throw .unusable(FormatError(.unusableFile, file: path, "the writer lock is \(SystemCalls.describeType(st)), not a regular file"))
        }
    }

    /// Polls with LOCK_NB rather than blocking: a blocking flock cannot be given a deadline
    /// without a signal, and a signal handler in a library would be another program's problem.
    private func take(_ operation: Int32, wait: Double) throws(WriterLockError) {
        let deadline = WriterLock.monotonicNow() + max(0, wait)
        var pause = 0.002
        while true {
            if flock(fd, operation | LOCK_NB) == 0 { return }
            let code = errno
            if code == EINTR { continue }
            guard code == EWOULDBLOCK else { throw .unusable(SystemCalls.fail(path, "cannot lock the writer lock", code)) }
            let left = deadline - WriterLock.monotonicNow()
            if left <= 0 {
                let dimension: String
                switch location.kind {
                case .consciousness: dimension = "consciousness/" + location.name
                case .proto(let name): dimension = "proto/" + name
                }
                throw .busy(dimension: dimension, lock: path, holder: LockHolder.holding(fd: fd), waited: wait)
            }
            var pauseTime = timespec()
            let sleepFor = min(pause, left)
            pauseTime.tv_sec = Int(sleepFor)
            pauseTime.tv_nsec = Int((sleepFor - Double(Int(sleepFor))) * 1e9)
            _ = nanosleep(&pauseTime, nil)
            // 2 ms doubling to 50 ms: a short update next door is noticed at once, a long pack
            // costs twenty wake-ups a second.
            pause = min(pause * 2, 0.05)
        }
    }

    static func monotonicNow() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// Who left the lock file at `path` naming them without holding the lock: a writer that
    /// died before it finished. nil when the file is absent, empty (released cleanly), held
    /// now, or names a process of this host that is still alive. Takes the lock for an instant
    /// (LOCK_NB, released at once) to tell; never writes the file.
    public static func staleHolder(ofLockFile path: String) -> LockHolder? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, SystemCalls.isRegular(st),
              let recorded = LockHolder(parsing: LockHolder.content(fd: fd)) else { return nil }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { return nil }
        _ = flock(fd, LOCK_UN)
        if recorded.host == LockHolder.current.host, let pid = recorded.pid, LockHolder.isAlive(pid) { return nil }
        return recorded
    }
}

/// The process a lock file names: its pid and host, as the holder wrote them.
public struct LockHolder: Equatable, Sendable, CustomStringConvertible {
    public var pid: Int32?
    public var host: String?

    public init(pid: Int32?, host: String?) { self.pid = pid; self.host = host }

    /// This process.
    public static var current: LockHolder { LockHolder(pid: getpid(), host: hostName()) }

    /// The line a holder writes: `pid 1234 host NAME`.
    public var line: String { "pid \(pid.map(String.init) ?? "?") host \(host ?? "?")\n" }

    /// `pid 1234 on host h`, for messages.
    public var description: String {
        switch (pid, host) {
        case let (pid?, host?): return "pid \(pid) on host \(host)"
        case let (pid?, nil): return "pid \(pid)"
        case let (nil, host?): return "a process on host \(host)"
        case (nil, nil): return "an unknown process"
        }
    }

    /// Reads `pid 1234 host NAME` (what layerfs writes) and the bare `1234 NAME` or
    /// `1234@NAME` other producers may write; nil for an empty file or one that names nobody.
    public init?(parsing text: String) {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).map(String.init)
        guard !words.isEmpty else { return nil }
        var pid: Int32?, host: String?
        if words[0] == "pid" {
            pid = words.count > 1 ? Int32(words[1]) : nil
            if words.count > 3, words[2] == "host", words[3] != "?" { host = words[3] }
        } else if let at = words[0].firstIndex(of: "@"), let p = Int32(words[0][..<at]) {
            pid = p
            host = String(words[0][words[0].index(after: at)...])
        } else if let p = Int32(words[0]) {
            pid = p
            host = words.count > 1 ? words[1] : nil
        }
        guard pid != nil || host != nil else { return nil }
        self.init(pid: pid, host: host)
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "?" }
        return String(cString: buffer)
    }

    /// kill(pid, 0): EPERM means the process exists but is another user's.
    static func isAlive(_ pid: Int32) -> Bool {
        pid > 0 && (kill(pid, 0) == 0 || errno == EPERM)
    }

    /// The lock file's first line (it is never longer).
    static func content(fd: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : ""
    }

    /// Who holds the lock on `fd`'s file now. The line the holder wrote says it; where that
    /// is missing (a holder that writes none, such as `flock(1)`, or the instant between
    /// locking and writing) or names a process of this host that is gone, the kernel's list
    /// of locks (`/proc/locks`) names the holding process of this host.
    static func holding(fd: Int32) -> LockHolder? {
        let written = LockHolder(parsing: content(fd: fd))
        let here = hostName()
        if let written, written.host != here, written.host != nil { return written }
        if let written, let pid = written.pid, isAlive(pid) { return written }
        var st = stat()
        guard fstat(fd, &st) == 0, let pid = kernelHolder(of: st) else { return written }
        return LockHolder(pid: pid, host: here)
    }

    /// The pid of the process holding a flock on the file `st` describes, from /proc/locks:
    /// `1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF` (waiters' lines carry `->`).
    static func kernelHolder(of st: stat) -> Int32? {
        guard let text = SystemCalls.readToEnd("/proc/locks") else { return nil }
        let dev = UInt64(truncatingIfNeeded: st.st_dev)
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff))
        let minor = (dev & 0xff) | ((dev >> 12) & ~UInt64(0xff))
        let inode = UInt64(truncatingIfNeeded: st.st_ino)
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            guard words.count >= 6, words[1] != "->", words[1] == "FLOCK" else { continue }
            let file = words[5].split(separator: ":")
            guard file.count == 3, UInt64(file[0], radix: 16) == major, UInt64(file[1], radix: 16) == minor,
                  UInt64(file[2]) == inode, let pid = Int32(words[4]), pid > 0 else { continue }
            return pid
        }
        return nil
    }
}

/// Why a writer could not take the lock.
public enum WriterLockError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Another writer held it for all of `waited` seconds.
    case busy(dimension: String, lock: String, holder: LockHolder?, waited: Double)
    /// The lock file cannot be created, opened or locked (a read-only volume, no permission).
    case unusable(FormatError)

    public var description: String {
        switch self {
        case .busy(let dimension, let lock, let holder, let waited):
            let who = holder.map { "by \($0)" } ?? "by another process"
            return "\(dimension) is being written \(who) (lock \(PackError.quote(lock))); waited \(WriterLockError.seconds(waited)) s"
        case .unusable(let error):
            return error.description
        }
    }

    /// `10`, `0.5`: as the user would write it.
    static func seconds(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}
