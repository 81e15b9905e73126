import CFuse
import CLinux
import Glibc
import Logging

/// FUSE over io_uring (`-o uring`): the C transport (CLinux/uring.c) under libfuse's
/// `fuse_session_custom_io`. The kernel hands a request to the queue of the CPU that made it,
/// which saves the cross-CPU wake-up a /dev/fuse READ pays. Anything that goes wrong before
/// every queue is registered leaves the mount on /dev/fuse, logged once.
final class UringTransport: @unchecked Sendable {
    // @unchecked: `handle` and `session` are set once; the C side does its own locking.
    let session: OpaquePointer
    let logger: Logger
    private(set) var handle: OpaquePointer?
    /// libfuse keeps its own copy in 3.14; held here too, for as long as the session.
    private let io = UnsafeMutablePointer<fuse_custom_io>.allocate(capacity: 1)

    private init(session: OpaquePointer, logger: Logger) {
        self.session = session
        self.logger = logger
    }

    deinit { io.deallocate() }

    /// Sets the transport up on a mounted session, before its loop starts. nil (logged): the
    /// mount stays on /dev/fuse.
    static func install(session: OpaquePointer, context: MountContext, threadsPerCPU: UInt32) -> UringTransport? {
        let transport = UringTransport(session: session, logger: context.logger)
        let fd = fuse_session_fd(session)
        var why = [CChar](repeating: 0, count: 256)
        let cookie = Unmanaged.passUnretained(transport).toOpaque()
        guard let handle = layerfs_uring_create(fd, threadsPerCPU, processRequest, logMessage, cookie, &why, why.count) else {
            context.logger.notice("io_uring: not used (\(String(cString: why))); requests go through /dev/fuse")
            return nil
        }
        transport.handle = handle
        context.uringHandle.store(handle, ordering: .releasing)
        transport.io.initialize(to: fuse_custom_io(writev: customWritev, read: customRead,
                                                   splice_receive: nil, splice_send: nil))
        // Same descriptor: libfuse keeps reading /dev/fuse (INIT, FORGET, INTERRUPT, and
        // everything when the ring is not in use) through these two functions.
        guard fuse_session_custom_io(session, transport.io, fd) == 0 else {
            context.uringHandle.store(nil, ordering: .releasing)
            layerfs_uring_stop(handle, 0)
            context.logger.notice("io_uring: libfuse refused the custom transport; requests go through /dev/fuse")
            return nil
        }
        return transport
    }

    /// After the session loop: the connection is gone and the queue threads are ending.
    func stop(context: MountContext) {
        guard let handle else { return }
        let served = layerfs_uring_served(handle)
        logger.info("io_uring: \(served) requests served through the rings")
        context.uringHandle.store(nil, ordering: .releasing)
        layerfs_uring_stop(handle, 2000)
        self.handle = nil
    }
}

/// A request from a ring entry: libfuse decodes and dispatches it as if read from /dev/fuse.
private let processRequest: layerfs_uring_process_fn = { cookie, request, length in
    guard let cookie, let request else { return }
    let transport = Unmanaged<UringTransport>.fromOpaque(cookie).takeUnretainedValue()
    var buf = fuse_buf()
    buf.size = length
    buf.mem = request
    buf.fd = -1
    fuse_session_process_buf(transport.session, &buf)
}

private let logMessage: layerfs_uring_log_fn = { cookie, level, message in
    guard let cookie, let message else { return }
    let transport = Unmanaged<UringTransport>.fromOpaque(cookie).takeUnretainedValue()
    if level == 0 { transport.logger.info("\(String(cString: message))") } else { transport.logger.warning("\(String(cString: message))") }
}

/// libfuse hands these the session's userdata: the MountContext.
private func uringHandle(_ userdata: UnsafeMutableRawPointer?) -> OpaquePointer? {
    guard let userdata else { return nil }
    return Unmanaged<MountContext>.fromOpaque(userdata).takeUnretainedValue().uringHandle.load(ordering: .acquiring)
}

private let customWritev: @convention(c) (Int32, UnsafeMutablePointer<iovec>?, Int32, UnsafeMutableRawPointer?) -> Int = { fd, iov, count, userdata in
    guard let handle = uringHandle(userdata) else { return writev(fd, iov, count) }
    return layerfs_uring_writev(handle, fd, iov, count)
}

private let customRead: @convention(c) (Int32, UnsafeMutableRawPointer?, Int, UnsafeMutableRawPointer?) -> Int = { fd, buf, len, userdata in
    guard let handle = uringHandle(userdata) else { return read(fd, buf, len) }
    return layerfs_uring_read(handle, fd, buf, len)
}
