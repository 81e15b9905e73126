import CLinux
import Foundation
import Glibc
import LayerFormat
import LayerFSCore
import LayerFUSE
import Logging

/// A checked mount request and the two ways to carry it out: in the foreground, or as a
/// daemon that reports back over a pipe only once the kernel's INIT has been answered.
struct MountPlan {
    struct Failure: Error, CustomStringConvertible { var description: String }

    let source: String
    let mountpoint: String
    let options: MountOptions

    /// Checks everything that can be checked before forking, so that errors reach the user
    /// with a clear reason and nothing is mounted.
    init(source: String, mountpoint: String, options: MountOptions) throws(Failure) {
        guard let resolved = SystemCalls.realPath(source) else {
            throw Failure(description: errno == ENOENT || errno == ENOTDIR ? "source '\(source)' does not exist"
                : "source '\(source)': \(String(cString: strerror(errno)))")
        }
        var st = stat()
        guard stat(resolved, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
            throw Failure(description: "source '\(source)' is not a directory")
        }
        guard access(resolved, R_OK | X_OK) == 0 else {
            throw Failure(description: "source '\(source)': permission denied (the mounting user must be able to read it)")
        }
        guard Volume(base: resolved).exists else {
            for sub in ["consciousness", "proto"] where access(resolved + "/" + sub, F_OK) == 0 && access(resolved + "/" + sub, R_OK | X_OK) != 0 {
                throw Failure(description: "source '\(source)': '\(sub)/' permission denied (the mounting user must be able to read it)")
            }
            throw Failure(description: "source '\(source)' is not a volume (no consciousness/ or proto/); `layerfs init '\(source)'` creates one")
        }
        self.source = resolved
        if mountpoint.hasPrefix("/dev/fd/") {
            // A descriptor for /dev/fuse, already mounted by a privileged parent (libfuse's
            // drop_privileges): libfuse takes it as it is.
            self.mountpoint = mountpoint
        } else {
            let absolute = MountTable.absolute(mountpoint)
            if let existing = MountTable.mount(at: absolute) {
                throw Failure(description: "mountpoint '\(mountpoint)' is already a mount (\(existing.type) of '\(existing.source)'); `layerfs unmount '\(mountpoint)'` first")
            }
            guard stat(absolute, &st) == 0 else {
                throw Failure(description: "mountpoint '\(mountpoint)' does not exist")
            }
            guard st.st_mode & S_IFMT == S_IFDIR else {
                throw Failure(description: "mountpoint '\(mountpoint)' is not a directory")
            }
            self.mountpoint = SystemCalls.realPath(absolute) ?? absolute
            if let overlap = MountPlan.overlap(source: resolved, mountpoint: self.mountpoint) {
                throw Failure(description: overlap)
            }
        }
        if access("/dev/fuse", F_OK) != 0 {
            throw Failure(description: "/dev/fuse is missing: this kernel or container has no FUSE (load the fuse module, or run the container with --device /dev/fuse)")
        }
        if access("/dev/fuse", R_OK | W_OK) != 0 {
            let reason = String(cString: strerror(errno))
            throw Failure(description: geteuid() == 0 ? "/dev/fuse is not usable: \(reason)"
                : "/dev/fuse is not usable by this user (\(reason)): libfuse opens it before fusermount3; it must be mode 0666, as Debian's udev rule makes it")
        }
        if (options.allowOther || options.allowRoot) && geteuid() != 0 && !MountPlan.fuseConfAllowsOther() {
            throw Failure(description: "\(options.allowOther ? "allow_other" : "allow_root") needs `user_allow_other` in /etc/fuse.conf for a non-root user")
        }
        if geteuid() != 0 && !self.mountpoint.hasPrefix("/dev/fd/") {
            // fusermount3's rule: a user mounts only on a directory they own or may write.
            var st = stat()
            if stat(self.mountpoint, &st) == 0, st.st_uid != geteuid(), access(self.mountpoint, W_OK) != 0 {
                throw Failure(description: "mountpoint '\(mountpoint)' is not yours and not writable by you: fusermount3 mounts only on a directory the user owns or may write")
            }
            if access("/bin/fusermount3", X_OK) != 0 && access("/usr/bin/fusermount3", X_OK) != 0 {
                throw Failure(description: "fusermount3 is missing (Debian package fuse3): a non-root user cannot mount without it")
            }
        }
        if options.logFile != nil, let path = options.logFile, !path.hasPrefix("/") {
            throw Failure(description: "--log-file must be an absolute path (the daemon runs in /)")
        }
        if let path = options.logFile {
            // Opened (and created) now, so that a log that cannot be written stops the mount
            // here instead of vanishing in the daemon.
            let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
            guard fd >= 0 else {
                throw Failure(description: "cannot write the log file '\(path)': \(String(cString: strerror(errno)))")
            }
            close(fd)
        }
        try MountPlan.checkObservability(options)
        self.options = options
    }

    /// Where a daemonized mount logs without --log-file: syslog where a syslog daemon listens
    /// (/dev/log); otherwise (containers, minimal machines) a file, or the daemon's messages
    /// (the EIO of --verify-reads, a refused update) would go nowhere. The volume's temp/ first,
    /// else the runtime directory of the user. Chosen only when daemonizing: a foreground
    /// mount logs to stderr and creates no file.
    static func defaultDaemonLog(source: String) -> LogSink.Destination {
        var st = stat()
        if stat("/dev/log", &st) == 0, st.st_mode & S_IFMT == S_IFSOCK { return .syslog }
        let candidates = [source + "/temp/layerfs.log",
                          (ProcessInfo.processInfo.environment["XDG_RUNTIME_DIR"] ?? "/tmp") + "/layerfs-\(getuid()).log"]
        for path in candidates {
            let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
            if fd >= 0 { close(fd); return .file(path) }
        }
        return .syslog
    }

    /// Why mounting `source` on `mountpoint` would make the daemon read through its own mount
    /// (every access to the volume would then wait on itself), or nil. Compared by device and
    /// inode along each path, so symlinks and bind mounts cannot hide the overlap.
    static func overlap(source: String, mountpoint: String) -> String? {
        func identity(_ path: String) -> (UInt64, UInt64)? {
            var st = stat()
            guard stat(path, &st) == 0 else { return nil }
            return (UInt64(truncatingIfNeeded: st.st_dev), UInt64(truncatingIfNeeded: st.st_ino))
        }
        /// The path and each of its ancestors up to /.
        func lineage(_ path: String) -> [String] {
            var out = [path]
            var current = path
            while current != "/" {
                let parent = (current as NSString).deletingLastPathComponent
                current = parent.isEmpty ? "/" : parent
                out.append(current)
            }
            return out
        }
        guard let sourceID = identity(source), let mountID = identity(mountpoint) else { return nil }
        if sourceID == mountID {
            return "mountpoint '\(mountpoint)' is the source '\(source)' itself: the daemon reads the volume through its own mount and would wait on itself; mount it elsewhere"
        }
        for ancestor in lineage(mountpoint).dropFirst() where identity(ancestor).map({ $0 == sourceID }) == true {
            return "mountpoint '\(mountpoint)' lies inside the source '\(source)' (through '\(ancestor)'): the daemon would read part of the volume through its own mount and wait on itself; mount it outside the volume"
        }
        for ancestor in lineage(source).dropFirst() where identity(ancestor).map({ $0 == mountID }) == true {
            return "the source '\(source)' lies inside the mountpoint '\(mountpoint)': once mounted, the volume would be hidden under the mount; mount it elsewhere"
        }
        return nil
    }

    static func fuseConfAllowsOther() -> Bool {
        guard let text = try? String(contentsOfFile: "/etc/fuse.conf", encoding: .utf8) else { return false }
        return text.split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces) == "user_allow_other" }
    }

    // MARK: - Running

    func runInForeground() -> Int32 {
        let sink = LogSink(options.logFile.map { .file($0) } ?? .standardError)
        return serve(sink: sink) { message in
            if message.hasPrefix("error: ") { Settings.printError(String(message.dropFirst(7))) }
        }
    }

    /// Forks before any thread exists. The parent waits on a pipe for "ready" (sent once the
    /// kernel's INIT is answered) or "error: ..." and exits 0 or 1 accordingly; the child
    /// becomes the daemon.
    func runDaemonized() -> Int32 {
        var fds: [Int32] = [0, 0]
        // Close-on-exec: fusermount3 (which auto_unmount leaves running) must not hold the
        // write end, or the parent never sees the end of the report.
        guard pipe(&fds) == 0, fcntl(fds[0], F_SETFD, FD_CLOEXEC) == 0, fcntl(fds[1], F_SETFD, FD_CLOEXEC) == 0 else {
            Settings.printError("pipe: \(String(cString: strerror(errno)))")
            return 1
        }
        let pid = fork()
        if pid < 0 {
            Settings.printError("fork: \(String(cString: strerror(errno)))")
            return 1
        }
        if pid > 0 {
            close(fds[1])
            return MountPlan.awaitDaemon(readingFrom: fds[0], pid: pid)
        }
        close(fds[0])
        setsid()
        let report = fds[1]
        let daemonLog = options.logFile.map { .file($0) } ?? MountPlan.defaultDaemonLog(source: source)
        let sink = LogSink(daemonLog)
        if case .file(let path) = daemonLog, options.logFile == nil {
            Settings.writeStderr("layerfs: note: no syslog here (/dev/log is missing): the daemon logs to \(path)\n")
        }
        let status = serve(sink: sink) { message in
            var bytes = Array((message + "\n").utf8)
            bytes.withUnsafeMutableBytes { _ = write(report, $0.baseAddress, $0.count) }
            if message == "ready" {
                // Detach from the terminal only now, so libfuse's own messages reached the user.
                let null = open("/dev/null", O_RDWR)
                if null >= 0 { dup2(null, STDIN_FILENO); dup2(null, STDOUT_FILENO); dup2(null, STDERR_FILENO); close(null) }
            }
            close(report)
        }
        exit(status)
    }

    static func awaitDaemon(readingFrom fd: Int32, pid: pid_t) -> Int32 {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 { data.append(contentsOf: buffer[0..<n]); continue }
            if n < 0 && errno == EINTR { continue }
            break
        }
        close(fd)
        let message = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
        if message == "ready" { return 0 }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        let reason = message.hasPrefix("error: ") ? String(message.dropFirst(7)) : message
        Settings.printError(reason.isEmpty ? "the mount daemon exited before the mount was ready" : reason)
        return 1
    }

    /// Builds the filesystem, mounts and runs the loop. `report` gets "ready" from the INIT
    /// callback, or "error: ..." if mounting fails.
    func serve(sink: LogSink, report: @escaping @Sendable (String) -> Void) -> Int32 {
        // A fixed mmap threshold keeps large transient buffers (an index being parsed) out of
        // the heap, so they go back to the system when freed: measured, this halves the
        // daemon's memory per layer (~200 -> ~100 bytes with 100 000 layers loaded).
        mallopt(M_MMAP_THRESHOLD, 256 * 1024)
        let level: Logger.Level = options.debug ? .debug : .info
        LoggingSystem.bootstrap { label in sink.handler(label: label, level: level) }
        let logger = Logger(label: "layerfs")
        raiseFileLimit(logger: logger)
        // The volume is reached through a descriptor opened before the mount exists: a path
        // walk from it starts below anything mounted on the source later (even on itself), so
        // the daemon never reads the volume through its own mount.
        let baseFD = open(source, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if baseFD < 0 { logger.warning("cannot hold the source open (\(String(cString: strerror(errno)))): using its path") }
        var configuration = FileSystem.Configuration(base: baseFD >= 0 ? "/proc/self/fd/\(baseFD)" : source)
        configuration.maxRegionSize = options.maxRegionSize
        configuration.cache.noOpen = !options.openCalls
        configuration.verifyReads = options.verifyReads
        configuration.servedPages = options.servedPages
        configuration.presentation = options.presentation
        let observability: MountObservability
        do throws(AccessLog.Failure) { observability = try MountObservability(options: options) } catch {
            report("error: \(error.description)")
            return 1
        }
        observability.configure(&configuration)
        if options.isWritable {
            // Writes need handles, and a listing changes with every create and unlink.
            configuration.writable = true
            configuration.cache.noOpen = false
            configuration.cache.cacheDirectories = false
            configuration.cache.blockSize = 1 << 20
        }
        let fs = FileSystem(configuration: configuration, logger: logger)
        let observer = observability.observer(for: fs)
        let mountpoint = self.mountpoint, source = self.source, plan = self
        let readaheadKB = options.readaheadKB ?? (geteuid() == 0 ? 1024 : 0)
        // Not on a writable mount: a push could land region bytes in the page cache of a layer
        // whose staged bytes a writer is changing under the same node.
        let prefetch = options.isWritable ? nil : Prefetcher.Settings(budget: UInt64(options.prefetchKB) * 1024,
                                                                      randomBudget: UInt64(options.prefetchRandomMB) << 20)
        let context = MountContext(fs: fs, logger: logger, debug: options.debug,
                                   readahead: UInt32(clamping: readaheadKB * 1024), observer: observer,
                                   prefetch: prefetch) {
            logger.info("mounted \(source) on \(mountpoint): \(fs.dimensionCount) dimensions")
            // Set before the INIT reply (below, before the loop starts) so that the first read
            // already has it, and checked once the reply is out, which caps it to the reply's
            // max_readahead: a value that did not hold is written again, and logged if it
            // still does not.
            if !mountpoint.hasPrefix("/dev/fd/") { BackgroundThread.start { plan.setReadahead(logger: logger, afterInit: true) } }
            report("ready")
        }
        let session: FUSESession
        do {
            session = try FUSESession(context: context, options: options.fuseOptions(source: source))
            try session.mount(at: mountpoint)
            // 4 per CPU: as many nested requests (a volume bound inside its own mount) as that.
            // Not with auto_unmount: when the daemon dies, the kernel tears the rings down
            // after the process is gone, and fusermount3's probe of the mountpoint (which must
            // fail with ENOTCONN for it to unmount) comes first: the mount stays.
            if options.uring && options.autoUnmount {
                logger.notice("io_uring: not used with auto_unmount; requests go through /dev/fuse")
            } else if options.uring {
                session.useUring(threadsPerCPU: 4)
            }
        } catch {
            report("error: \(error.description)")
            return 1
        }
        let ownMount = MountTable.mount(at: mountpoint)
        observability.mounted(plan: self, device: ownMount?.device, fs: fs, observer: observer, logger: logger)
        if let device = ownMount.flatMap({ MountTable.deviceNumber($0.device) }) {
            fs.setOwnMountDevice(device)
        } else if !mountpoint.hasPrefix("/dev/fd/") {
            logger.warning("\(mountpoint) not found in /proc/self/mountinfo: dimensions moved under the mountpoint later are not detected")
        }
        if !mountpoint.hasPrefix("/dev/fd/") { setReadahead(logger: logger, afterInit: false) }
        if chdir("/") != 0 { logger.warning("chdir /: \(String(cString: strerror(errno)))") }
        session.installSignalHandlers()
        HangupListener.start(sink: sink, logger: logger, also: { observability.hangup() })
        fs.setInvalidationHandler { [session] in session.notify($0) }
        VolumeWatcher(fs: fs, pollIntervalMilliseconds: options.pollInterval ?? 500) { [session] in session.notify($0) }.start()
        let result = withExtendedLifetime(context) { session.run(maxThreads: options.maxThreads) }
        // Staged changes become generations before the unmount completes.
        fs.finishWrites()
        session.unmount()
        observability.unmounted(plan: self)
        logger.info("unmounted \(mountpoint)")
        // libfuse's signal handlers end the loop with the signal's number: a clean stop.
        return [0, SIGTERM, SIGINT, SIGHUP].contains(result) ? 0 : 1
    }

    /// Each served dimension keeps its region open (for pread, which never raises SIGBUS):
    /// a volume of thousands of dimensions would meet the usual soft limit of 1024 open
    /// files, so the daemon takes the hard limit, as file servers do.
    func raiseFileLimit(logger: Logger) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        let wanted = limit.rlim_max
        limit.rlim_cur = wanted
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) != 0 {
            logger.notice("open-file limit left at its soft value: \(String(cString: strerror(errno)))")
        }
    }

    /// The kernel caps a FUSE mount's readahead at 128 KiB; root can raise it per mount, and
    /// 1 MiB requests read a large layer markedly faster. Runs once the INIT reply is out; the
    /// value is read back, and what could not be applied is logged.
    func setReadahead(logger: Logger, afterInit: Bool) {
        let asked = options.readaheadKB
        let kb = asked ?? (geteuid() == 0 ? 1024 : 0)
        guard kb > 0 else { return }
        guard geteuid() == 0 else {
            if !afterInit { return }
            logger.notice("readahead_kb=\(kb) not applied: only root may set a mount's readahead; the kernel's default (128 KiB) stays")
            return
        }
        guard let mount = MountTable.mount(at: mountpoint) else {
            if !afterInit { return }
            logger.notice("readahead_kb=\(kb) not applied: \(mountpoint) not found in /proc/self/mountinfo")
            return
        }
        let path = "/sys/class/bdi/\(mount.device)/read_ahead_kb"
        var problem = ""
        // The INIT reply is processed by the kernel within moments of being sent: try a few
        // times until the value holds.
        for _ in 0..<(afterInit ? 20 : 1) {
            if afterInit { usleep(20_000) }
            let fd = open(path, O_RDWR | O_CLOEXEC)
            guard fd >= 0 else { problem = "cannot open \(path): \(String(cString: strerror(errno)))"; continue }
            var text = Array("\(kb)\n".utf8)
            if text.withUnsafeMutableBytes({ write(fd, $0.baseAddress, $0.count) }) < 0 {
                problem = "\(path): \(String(cString: strerror(errno)))"
                close(fd)
                continue
            }
            var buffer = [UInt8](repeating: 0, count: 32)
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
            close(fd)
            let shown = n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : "?"
            if shown == String(kb) {
                if afterInit { logger.info("readahead \(kb) KiB on \(mountpoint)") }
                return
            }
            // Before INIT the kernel may show the old value until the reply is processed.
            if !afterInit { return }
            problem = "the kernel shows \(shown) KiB"
        }
        logger.notice("readahead_kb=\(kb) not applied: \(problem)")
    }
}

/// SIGHUP reopens the log file instead of ending the session: the signal is blocked in every
/// thread (request threads inherit the mask) and one thread waits for it with sigwait.
enum HangupListener {
    static func start(sink: LogSink, logger: Logger, also: @escaping @Sendable () -> Void = {}) {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGHUP)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        let waitSet = set
        BackgroundThread.start {
            var set = waitSet
            var signal: Int32 = 0
            while sigwait(&set, &signal) == 0 {
                sink.reopen()
                also()
                logger.info("SIGHUP: log reopened")
            }
        }
    }
}
