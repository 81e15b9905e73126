import ArgumentParser
import Foundation

/// `-o` options: every layerfs option has an `-o name[=value]` spelling (for fstab), and the
/// generic mount options that mount(8) passes are accepted. Anything else is an error.
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
    var maxThreads = 16
    var dev = false
    var suid = false
    var exec = true
    var atime: String?
    var requestedReadWrite = false

    /// Options mount(8) or mount.fuse3 may pass that do not change what layerfs does.
    static let ignored: Set<String> = ["ro", "defaults", "auto", "noauto", "nofail", "_netdev", "user", "nouser", "users",
                                       "async", "sync", "default_permissions", "nodiratime", "diratime", "lazytime"]

    mutating func apply(_ list: String) throws {
        for option in list.split(separator: ",").map(String.init) where !option.isEmpty {
            let parts = option.split(separator: "=", maxSplits: 1).map(String.init)
            let name = parts[0], value = parts.count > 1 ? parts[1] : nil
            func number<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
                guard let value, let v = T(value) else { throw ValidationError("-o \(option): \(name) needs a number (\(name)=N)") }
                return v
            }
            switch name {
            case "allow_other": allowOther = true
            case "allow_root": allowRoot = true
            case "debug": debug = true
            case "foreground": foreground = true
            case "log_file":
                guard let value, !value.isEmpty else { throw ValidationError("-o log_file needs a path (log_file=PATH)") }
                logFile = value
            case "max_region_size": maxRegionSize = try number(UInt64.self)
            case "readahead_kb": readaheadKB = try number(Int.self)
            case "open_calls": openCalls = true
            case "poll_interval": pollInterval = try number(Int.self)
            case "verify_reads": verifyReads = true
            case "max_threads":
                maxThreads = try number(Int.self)
                guard maxThreads >= 1 else { throw ValidationError("-o max_threads must be at least 1") }
            case "dev": dev = true
            case "nodev": dev = false
            case "suid": suid = true
            case "nosuid": suid = false
            case "exec": exec = true
            case "noexec": exec = false
            case "atime", "noatime", "relatime", "strictatime": atime = name
            case "rw": requestedReadWrite = true
            default:
                if MountOptions.ignored.contains(name) || name.hasPrefix("x-") || name == "comment" { continue }
                throw ValidationError("unknown mount option -o \(option) (see `layerfs mount --help`)")
            }
        }
    }

    /// The libfuse options for fuse_session_new: read-only always, nosuid/nodev unless asked.
    func fuseOptions(source: String) -> [String] {
        // fuse_opt splits on ',' and treats '\' as an escape.
        let escapedSource = source.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: ",", with: "\\,")
        var out = ["ro", "fsname=" + escapedSource, "subtype=layerfs", "default_permissions",
                   dev ? "dev" : "nodev", suid ? "suid" : "nosuid"]
        if !exec { out.append("noexec") }
        if let atime { out.append(atime) }
        if allowOther { out.append("allow_other") } else if allowRoot { out.append("allow_root") }
        return out
    }
}

