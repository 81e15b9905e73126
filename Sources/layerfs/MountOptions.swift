import Foundation
import LayerFormat
import LayerFSCore

/// `-o` options: every layerfs option has an `-o name[=value]` spelling (for fstab), and the
/// generic mount options that mount(8) passes are accepted. Anything else is an error, and so
/// is a number outside its range (`Limits`).
struct MountOptions {
    var allowOther = false
    var allowRoot = false
    var debug = false
    var foreground = false
    var logFile: String?
    var maxRegionSize: UInt64?
    var readaheadKB: Int?
    var openCalls = false
    var pollInterval: Int?
    var verifyReads = false
    /// `uring`: serve requests through FUSE over io_uring where the kernel allows it.
    var uring = false
    var maxThreads: UInt32 = 16
    var dev = false
    var suid = false
    var exec = true
    var atime: String?
    var requestedReadWrite = false
    var autoUnmount = false
    var presentation = Presentation()
    /// Observability (ObservabilityOptions.swift): the access log, the metrics file and its interval.
    var accessLog: String?
    var metricsFile: String?
    var metricsInterval: Int?
    /// `served_pages=`: what becomes of the region's pages once served (one copy in memory).
    var servedPages: ServedPagePolicy = .drop
    /// `prefetch_kb=`: bytes of the next small layers pushed per READ (0: off).
    var prefetchKB = 1024
    /// `prefetch_random_mb=`: MiB of a large layer pushed while it is read at random (0: off).
    var prefetchRandomMB = 256
    /// `-o writable` / `--writable`; `ro` anywhere wins over it.
    var writable = false
    var readOnly = false
    var isWritable: Bool { writable && !readOnly }

    /// Options mount(8) or mount.fuse3 may pass that do not change what layerfs does.
    static let ignored: Set<String> = ["defaults", "auto", "noauto", "nofail", "_netdev", "user", "nouser", "users",
                                       "async", "sync", "default_permissions", "nodiratime", "diratime", "lazytime"]

    mutating func apply(_ list: String) throws(SettingError) {
        for option in list.split(separator: ",").map(String.init) where !option.isEmpty {
            // Empty pieces kept, so that `-o =` has a name (the empty one, unknown) to report.
            let parts = option.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let name = parts.first ?? option, value = parts.count > 1 ? parts[1] : nil
            func number<T>(_ setting: NumericSetting<T>) throws(SettingError) -> T {
                guard let value else { throw SettingError("-o \(option): needs a value (\(name)=N, \(setting.allowed))") }
                return try setting.parse(value, spelling: "-o \(option)")
            }
            switch name {
            case "allow_other": allowOther = true
            case "allow_root": allowRoot = true
            case "debug": debug = true
            case "foreground": foreground = true
            case "log_file":
                guard let value, !value.isEmpty else { throw SettingError("-o log_file needs a path (log_file=PATH)") }
                logFile = value
            case "max_region_size": maxRegionSize = try number(Limits.maxRegionSize)
            case "readahead_kb": readaheadKB = try number(Limits.readaheadKB)
            case "open_calls": openCalls = true
            case "poll_interval": pollInterval = try number(Limits.pollInterval)
            case "verify_reads": verifyReads = true
            case "uring": uring = true
            case "max_threads": maxThreads = try number(Limits.maxThreads)
            case "dev": dev = true
            case "nodev": dev = false
            case "suid": suid = true
            case "nosuid": suid = false
            case "exec": exec = true
            case "noexec": exec = false
            case "atime", "noatime", "relatime", "strictatime": atime = name
            case "rw": requestedReadWrite = true
            case "ro": readOnly = true
            case "writable": writable = true
            case "auto_unmount": autoUnmount = true
            case "uid": presentation.uid = try number(Limits.owner)
            case "gid": presentation.gid = try number(Limits.owner)
            case "file_mode": presentation.fileMode = try number(Limits.mode)
            case "dir_mode": presentation.directoryMode = try number(Limits.mode)
            case "umask": presentation.umask = try number(Limits.umask)
            case "access_log", "metrics_file", "metrics_interval": try applyObservability(name, value, option)
            case "prefetch_kb": prefetchKB = try number(Limits.prefetchKB)
            case "prefetch_random_mb": prefetchRandomMB = try number(Limits.prefetchRandomMB)
            case "served_pages":
                guard let value, let policy = ServedPagePolicy(rawValue: value) else {
                    throw SettingError("-o \(option): expected served_pages=keep, drop or pageout")
                }
                servedPages = policy
            default:
                if MountOptions.ignored.contains(name) || name.hasPrefix("x-") || name == "comment" { continue }
                throw SettingError("unknown mount option -o \(option) (see `layerfs mount --help`)")
            }
        }
    }

    /// The libfuse options for fuse_session_new: read-only always, nosuid/nodev unless asked.
    func fuseOptions(source: String) -> [String] {
        // fuse_opt splits on ',' and treats '\' as an escape.
        let escapedSource = source.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: ",", with: "\\,")
        var out = [isWritable ? "rw" : "ro", "fsname=" + escapedSource, "subtype=layerfs", "default_permissions",
                   dev ? "dev" : "nodev", suid ? "suid" : "nosuid"]
        if !exec { out.append("noexec") }
        if let atime { out.append(atime) }
        if allowOther { out.append("allow_other") } else if allowRoot { out.append("allow_root") }
        // libfuse's: fusermount3 stays behind and unmounts when the daemon dies.
        if autoUnmount { out.append("auto_unmount") }
        return out
    }
}

