import Glibc

extension Limits {
    /// A write of the metrics file costs a few hundred microseconds; once a second is already
    /// more than a scraper reads, and a day is the longest interval of any use.
    static let metricsInterval = NumericSetting<Int>(range: 1...86_400, unit: "seconds")
}

extension MountOptions {
    /// `-o access_log=PATH`, `-o metrics_file=PATH`, `-o metrics_interval=SECONDS`.
    mutating func applyObservability(_ name: String, _ value: String?, _ option: String) throws(SettingError) {
        switch name {
        case "metrics_interval":
            guard let value else { throw SettingError("-o \(option): needs a value (metrics_interval=N, \(Limits.metricsInterval.allowed))") }
            metricsInterval = try Limits.metricsInterval.parse(value, spelling: "-o \(option)")
        default:
            guard let value, !value.isEmpty else { throw SettingError("-o \(name) needs a path (\(name)=PATH)") }
            if name == "access_log" { accessLog = value } else { metricsFile = value }
        }
    }
}

extension MountPlan {
    /// The access log and the metrics file must be absolute (the daemon runs in /) and
    /// writable, checked before anything is mounted.
    static func checkObservability(_ options: MountOptions) throws(Failure) {
        for (flag, path) in [("--access-log", options.accessLog), ("--metrics-file", options.metricsFile)] {
            guard let path else { continue }
            guard path.hasPrefix("/") else { throw Failure(description: "\(flag) must be an absolute path (the daemon runs in /)") }
        }
        if let path = options.accessLog {
            let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
            guard fd >= 0 else { throw Failure(description: "cannot write the access log '\(path)': \(String(cString: strerror(errno)))") }
            close(fd)
        }
        if let path = options.metricsFile {
            guard let (dir, name) = MetricsFile.split(path), !name.isEmpty, name != ".", name != ".." else {
                throw Failure(description: "--metrics-file '\(path)' names no file")
            }
            // Written as a temporary file beside it, then renamed: the directory must be writable.
            var st = stat()
            guard stat(dir, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
                throw Failure(description: "--metrics-file '\(path)': directory '\(dir)' does not exist")
            }
            guard access(dir, W_OK | X_OK) == 0 else {
                throw Failure(description: "--metrics-file '\(path)': cannot write in '\(dir)' (the file is replaced by a rename there): \(String(cString: strerror(errno)))")
            }
        }
    }
}
