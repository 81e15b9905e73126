import CLinux
import Glibc
import LayerFormat
import Logging

/// Notices changes to the volume and hands them to `FileSystem.refresh` on a thread of its
/// own: inotify where it works (local filesystems), plus a cheap stat poll every
/// `pollInterval` milliseconds as the fallback (network filesystems deliver no inotify
/// events; there the delay is bounded by their attribute cache, e.g. NFS actimeo).
public final class VolumeWatcher: @unchecked Sendable {
    // @unchecked: `inotifyFD` and `watched` are touched only by the watcher thread after start.
    let fs: FileSystem
    let pollInterval: Int
    let deliver: @Sendable ([Invalidation]) -> Void
    private var inotifyFD: Int32 = -1
    private var watched: Set<String> = []

    /// `deliver` sends the invalidations to the kernel; it runs on the watcher thread.
    public init(fs: FileSystem, pollIntervalMilliseconds: Int, deliver: @escaping @Sendable ([Invalidation]) -> Void) {
        self.fs = fs
        // The command checks the range; clamped here too, so no value can trap the watcher thread.
        self.pollInterval = min(max(0, pollIntervalMilliseconds), 3_600_000)
        self.deliver = deliver
    }

    public func start() {
        inotifyFD = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        if inotifyFD < 0 { fs.logger.warning("inotify unavailable (\(String(cString: strerror(errno)))): polling only") }
        if inotifyFD < 0 && pollInterval == 0 { fs.logger.warning("polling is off and inotify is unavailable: updates are not picked up") }
        BackgroundThread.start { [self] in run() }
    }

    func watch(_ path: String) {
        guard inotifyFD >= 0 else { return }
        let mask = UInt32(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)
        // Adding again is cheap and picks up a directory swapped in under the same name.
        if inotify_add_watch(inotifyFD, path, mask) >= 0 { watched.insert(path) }
    }

    func rewatch() {
        watch(fs.volume.base)
        watch(fs.volume.consciousnessDirectory)
        watch(fs.volume.protoDirectory)
        for slot in fs.directory.withLock({ $0.slots }) {
            switch slot.withState({ $0.phase }) {
            case .unloaded, .removed: continue
            default: watch(slot.location.directory)
            }
        }
    }

    func run() {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            rewatch()
            var pfd = pollfd(fd: inotifyFD, events: Int16(POLLIN), revents: 0)
            let timeout = pollInterval > 0 ? Int32(pollInterval) : -1
            let ready: Int32
            if inotifyFD >= 0 {
                ready = poll(&pfd, 1, timeout)
            } else if pollInterval > 0 {
                usleep(useconds_t(pollInterval) * 1000)
                ready = 0
            } else {
                return // neither inotify nor polling: nothing will ever wake us (warned at start)
            }
            if ready > 0 {
                // A writer does several things in a row: let it finish a step, then drain.
                usleep(20_000)
                while buffer.withUnsafeMutableBytes({ read(inotifyFD, $0.baseAddress, $0.count) }) > 0 {}
            }
            let invalidations = fs.refresh()
            if !invalidations.isEmpty { deliver(invalidations) }
        }
    }
}

/// A detached POSIX thread running a closure: the watcher's, and the daemon's SIGHUP waiter.
public enum BackgroundThread {
    final class Box { let body: () -> Void; init(_ body: @escaping () -> Void) { self.body = body } }

    public static func start(_ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { arg in
            let box = Unmanaged<BackgroundThread.Box>.fromOpaque(arg!).takeRetainedValue()
            box.body()
            return nil
        }, box)
        if result == 0 { pthread_detach(thread) } else { Unmanaged<Box>.fromOpaque(box).release() }
    }
}
