import Glibc
import LayerFSCore
import LayerFUSE
import Logging
import Synchronization

/// The daemon's observability, set up and torn down around the session: the access log, the
/// status socket and the metrics file. MountPlan.serve calls it at four points (before the
/// core exists, once mounted, on SIGHUP, after the loop ends), so that its own code stays
/// about mounting.
final class MountObservability: Sendable {
    let options: MountOptions
    let accessLog: AccessLog?
    private let socketPath = Mutex<String?>(nil)
    private let metrics = Mutex<MetricsFile?>(nil)

    init(options: MountOptions) throws(AccessLog.Failure) {
        self.options = options
        accessLog = try options.accessLog.map { (path) throws(AccessLog.Failure) in try AccessLog(path: path) }
        accessLog?.start()
    }

    /// Generations served or refused go to the access log.
    func configure(_ configuration: inout FileSystem.Configuration) {
        guard let accessLog else { return }
        configuration.generationEvents = { event in accessLog.append(MountObserver.line(for: event)) }
    }

    func observer(for fs: FileSystem) -> MountObserver { MountObserver(fs: fs, accessLog: accessLog) }

    /// Once mounted: the mount line, the status socket (named after the mount's device), the
    /// first metrics file.
    func mounted(plan: MountPlan, device: String?, fs: FileSystem, observer: MountObserver, logger: Logger) {
        // The kernel's options, then layerfs's own as -o spells them.
        var shown = options.fuseOptions(source: plan.source)
        if let n = options.pollInterval { shown.append("poll_interval=\(n)") }
        if let n = options.readaheadKB { shown.append("readahead_kb=\(n)") }
        if let n = options.maxRegionSize { shown.append("max_region_size=\(n)") }
        if options.maxThreads != 16 { shown.append("max_threads=\(options.maxThreads)") }
        if options.openCalls { shown.append("open_calls") }
        if options.verifyReads { shown.append("verify_reads") }
        if options.debug { shown.append("debug") }
        let fuseOptions = shown
        accessLog?.append(AccessLog.line("mount", [("source", .string(plan.source)), ("mountpoint", .string(plan.mountpoint)),
                                                   ("pid", .integer(UInt64(getpid()))), ("options", .string(fuseOptions.joined(separator: ",")))]))
        let report = MountReport(source: plan.source, mountpoint: plan.mountpoint, options: fuseOptions,
                                 accessLog: options.accessLog, metricsFile: options.metricsFile,
                                 metricsInterval: options.metricsInterval ?? 15, fs: fs, observer: observer,
                                 startedAt: MountReport.wallClock())
        if let device {
            let allowOther = options.allowOther
            let path = ControlSocket.serve(device: device, logger: logger, mayRead: { cred in
                ControlSocket.mayRead(cred, allowOther: allowOther) { try? fs.attributes(.root) }
            }, document: { report.status().rendered() + "\n" })
            socketPath.withLock { $0 = path }
        }
        if let path = options.metricsFile {
            let file = MetricsFile(path: path, interval: options.metricsInterval ?? 15, logger: logger) { report.prometheus() }
            file.start()
            metrics.withLock { $0 = file }
        }
    }

    func hangup() { accessLog?.reopen() }

    /// After the loop: the unmount line (flushed), the last metrics, no socket left behind.
    func unmounted(plan: MountPlan) {
        if let path = socketPath.withLock({ $0 }) { unlink(path) }
        metrics.withLock { $0 }?.stop()
        accessLog?.append(AccessLog.line("unmount", [("source", .string(plan.source)), ("mountpoint", .string(plan.mountpoint)),
                                                     ("pid", .integer(UInt64(getpid())))]))
        accessLog?.stop()
    }
}
