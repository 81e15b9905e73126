import CLinux
import Glibc
import Logging
import Synchronization

/// Where the mount's log goes: stderr in the foreground, syslog when daemonized, or a file
/// (`--log-file`, reopened on SIGHUP so that logrotate can move it). No threads of its own, so
/// it can be set up before the daemon forks.
final class LogSink: Sendable {
    enum Destination: Sendable {
        case standardError
        case syslog
        case file(String)
    }

    let destination: Destination
    private let fd = Mutex<Int32>(-1)

    init(_ destination: Destination) {
        self.destination = destination
        switch destination {
        case .syslog: openlog("layerfs", LOG_PID, LOG_DAEMON)
        case .file: reopen()
        case .standardError: break
        }
    }

    /// Opens the log file again (after logrotate moved it).
    func reopen() {
        guard case .file(let path) = destination else { return }
        fd.withLock { fd in
            if fd >= 0 { close(fd) }
            fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        }
    }

    func write(_ level: Logger.Level, _ message: String) {
        switch destination {
        case .syslog:
            let priority: Int32
            switch level {
            case .trace, .debug: priority = LOG_DEBUG
            case .info: priority = LOG_INFO
            case .notice: priority = LOG_NOTICE
            case .warning: priority = LOG_WARNING
            case .error: priority = LOG_ERR
            case .critical: priority = LOG_CRIT
            }
            layerfs_syslog(priority, message)
        case .standardError:
            append(STDERR_FILENO, "layerfs[\(getpid())] \(level): \(message)\n")
        case .file:
            let line = "\(LogTime.now()) layerfs[\(getpid())] \(level): \(message)\n"
            fd.withLock { fd in if fd >= 0 { append(fd, line) } }
        }
    }

    private func append(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { _ = Glibc.write(fd, $0.baseAddress, $0.count) }
    }

    func handler(label: String, level: Logger.Level) -> LogHandler {
        SinkHandler(sink: self, logLevel: level)
    }
}

/// The swift-log handler that writes to a `LogSink`.
struct SinkHandler: LogHandler {
    let sink: LogSink
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String,
             file: String, function: String, line: UInt) {
        sink.write(level, message.description)
    }
}

enum LogTime {
    static func now() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var parts = tm()
        gmtime_r(&t, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
        return String(cString: buffer)
    }
}
