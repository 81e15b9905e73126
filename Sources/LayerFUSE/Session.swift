import CFuse
import Glibc
import LayerFSCore
import Logging

/// One libfuse session: create, mount, run the multithreaded loop, unmount. The only place
/// that owns libfuse's session object.
/// @unchecked Sendable: the notify calls libfuse offers are safe from any thread; the rest is
/// used from the thread that created the session.
public final class FUSESession: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    let context: MountContext
    private var session: OpaquePointer?
    private var ops: fuse_lowlevel_ops
    private var mounted = false
    private var mountpoint: String?
    private var uring: UringTransport?

    /// `options` are libfuse `-o` options (ro, fsname=..., allow_other...), already checked.
    public init(context: MountContext, options: [String]) throws(Failure) {
        self.context = context
        self.ops = Operations.make(writable: context.fs.isWritable)
        var args = fuse_args()
        defer { fuse_opt_free_args(&args) }
        // FUSE_ARGS_INIT does not import: start zeroed and add argv[0] too.
        for arg in ["layerfs", "-o", options.joined(separator: ",")] {
            guard fuse_opt_add_arg(&args, arg) == 0 else { throw Failure(description: "out of memory building arguments") }
        }
        let userdata = Unmanaged.passUnretained(context).toOpaque()
        session = fuse_session_new(&args, &ops, MemoryLayout<fuse_lowlevel_ops>.size, userdata)
        guard session != nil else {
            throw Failure(description: "libfuse refused the options: \(options.joined(separator: ","))")
        }
    }

    deinit {
        if let session {
            if mounted { fuse_session_unmount(session) }
            fuse_session_destroy(session)
        }
    }

    /// Mounts on `mountpoint` (a directory, or `/dev/fd/N` from a privileged parent).
    public func mount(at mountpoint: String) throws(Failure) {
        guard fuse_session_mount(session, mountpoint) == 0 else {
            throw Failure(description: "cannot mount on '\(mountpoint)' (libfuse's or fusermount3's reason is above)")
        }
        mounted = true
        self.mountpoint = mountpoint
    }

    /// FUSE over io_uring (`-o uring`, UringTransport.swift): after mount, before run.
    public func useUring(threadsPerCPU: UInt32) {
        if let session { uring = UringTransport.install(session: session, context: context, threadsPerCPU: threadsPerCPU) }
    }

    /// SIGINT, SIGTERM (and SIGHUP unless the caller takes it) end the loop cleanly.
    public func installSignalHandlers() {
        // A background job from a non-interactive shell starts with SIGINT ignored, and
        // libfuse only replaces default actions.
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
        fuse_set_signal_handlers(session)
    }

    /// Runs the multithreaded request loop until unmounted or signalled.
    public func run(maxIdleThreads: UInt32 = 8, maxThreads: UInt32 = 16) -> Int32 {
        guard let config = fuse_loop_cfg_create() else { return -ENOMEM }
        defer { fuse_loop_cfg_destroy(config) }
        fuse_loop_cfg_set_clone_fd(config, 0)
        fuse_loop_cfg_set_idle_threads(config, min(maxIdleThreads, maxThreads))
        fuse_loop_cfg_set_max_threads(config, maxThreads)
        if let session { context.prefetcher?.start(session: session) }
        let result = fuse_session_loop_mt(session, config)
        uring?.stop(context: context)
        // Before the session can be destroyed: the prefetcher sends through it. A send can be
        // stuck on a page locked by a READ the ended loop will never answer; a forced unmount
        // aborts the connection (the kernel ends every pending request), which frees it.
        if let prefetcher = context.prefetcher, !prefetcher.stop(timeout: 1) {
            context.logger.warning("prefetch: a send is waiting on a READ no worker will answer: aborting the connection")
            if let mountpoint, !mountpoint.hasPrefix("/dev/fd/") { umount2(mountpoint, Int32(MNT_FORCE)) }
            prefetcher.stop()
        }
        fuse_remove_signal_handlers(session)
        return result
    }

    /// Tells the kernel to drop what an update made stale. Called from the watcher thread,
    /// never from a request handler (the kernel may wait on the directory's lock, which a
    /// request in flight can hold).
    public func notify(_ invalidations: [Invalidation]) {
        guard let session else { return }
        for item in invalidations {
            let result: Int32
            switch item {
            case .entry(let parent, let name):
                result = fuse_lowlevel_notify_inval_entry(session, parent.rawValue, name, name.utf8.count)
            case .directory(let node):
                result = fuse_lowlevel_notify_inval_inode(session, node.rawValue, 0, 0)
            }
            // ENOENT: the kernel did not have it cached, which is fine.
            if result != 0 && result != -ENOENT {
                context.logger.debug("notify \(item): \(String(cString: strerror(-result)))")
            }
        }
    }

    public func unmount() {
        if mounted, let session {
            fuse_session_unmount(session)
            mounted = false
        }
    }
}
