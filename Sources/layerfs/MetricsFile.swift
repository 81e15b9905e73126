import Glibc
import LayerFSCore
import LayerFUSE
import Logging
import Synchronization

/// `--metrics-file`: the counters in Prometheus text format, rewritten every interval for
/// node_exporter's textfile collector. Written to a temporary file in the same directory and
/// renamed over the old one, so that a scrape reads a whole file, old or new, never half.
final class MetricsFile: Sendable {
    let path: String
    let interval: Int
    let render: @Sendable () -> String
    let logger: Logger
    private let stopped = Atomic<Bool>(false)
    /// Whether the last write failed (logged once, until one succeeds again).
    private let failing = Atomic<Bool>(false)

    init(path: String, interval: Int, logger: Logger, render: @escaping @Sendable () -> String) {
        self.path = path
        self.interval = interval
        self.logger = logger
        self.render = render
    }

    func start() {
        write()
        BackgroundThread.start { [self] in
            Signals.blockAll()
            var slept = 0
            while !stopped.load(ordering: .acquiring) {
                // In steps of 100 ms, so that stop() is prompt.
                usleep(100_000)
                slept += 100
                if slept >= interval * 1000 {
                    slept = 0
                    write()
                }
            }
        }
    }

    /// Stops the rewrites after one last write (the figures at unmount).
    func stop() {
        stopped.store(true, ordering: .releasing)
        write()
    }

    /// An absolute path's directory and last name ("/a/b.prom" -> ("/a", "b.prom")).
    static func split(_ path: String) -> (directory: String, name: String)? {
        guard path.hasPrefix("/"), let slash = path.lastIndex(of: "/") else { return nil }
        let directory = String(path[..<slash])
        return (directory.isEmpty ? "/" : directory, String(path[path.index(after: slash)...]))
    }

    func write() {
        let text = render()
        guard let (dir, name) = MetricsFile.split(path) else { return }
        let temporary = (dir == "/" ? "" : dir) + "/." + name + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        var problem: String?
        if fd < 0 {
            problem = "cannot write '\(temporary)': \(String(cString: strerror(errno)))"
        } else {
            var bytes = Array(text.utf8)
            let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n != bytes.count { problem = "cannot write '\(temporary)': \(String(cString: strerror(errno)))" }
            close(fd)
            if problem == nil && rename(temporary, path) != 0 { problem = "cannot rename to '\(path)': \(String(cString: strerror(errno)))" }
            if problem != nil { unlink(temporary) }
        }
        if let problem {
            if !failing.exchange(true, ordering: .relaxed) { logger.warning("metrics file not written: \(problem)") }
        } else if failing.exchange(false, ordering: .relaxed) {
            logger.info("metrics file written again: \(path)")
        }
    }
}
