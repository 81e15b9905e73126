import ArgumentParser
import Glibc
import LayerFormat
import LayerFSCore
import LayerFUSE
import Logging

struct MountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mount",
        abstract: "Mount a volume: every layer a read-only file, its checksum and metadata as extended attributes.",
        // One line per paragraph: ArgumentParser wraps to the terminal, and keeps newlines.
        discussion: """
        Returns once the mount answers (so `layerfs mount SRC MNT && ls MNT` works), or exits non-zero with the reason and nothing mounted.

        Every option also has an -o spelling, for /etc/fstab: /srv/mmap /mnt/layers fuse.layerfs ro,allow_other 0 0

        -o options: allow_other, allow_root, auto_unmount, debug, foreground, log_file=PATH, max_region_size=N, readahead_kb=N, open_calls, poll_interval=MS, verify_reads, writable, access_log=PATH, metrics_file=PATH, metrics_interval=SECONDS, max_threads=N, uid=N, gid=N, file_mode=OCTAL, dir_mode=OCTAL, umask=OCTAL, served_pages=keep|drop|pageout, prefetch_kb=N, prefetch_random_mb=N, uring, dev, suid, noexec, noatime (nodev and nosuid are the default). mount(8)'s generic options (ro, defaults, nofail, _netdev, x-*) are accepted.

        Numbers out of range are refused before anything is mounted: poll_interval \(Limits.pollInterval.allowed), max_threads \(Limits.maxThreads.allowed), readahead_kb \(Limits.readaheadKB.allowed), max_region_size and $MMAP_MAX_SIZE \(Limits.maxRegionSize.allowed).

        Examples:
          layerfs mount data/mmap /mnt/layers
          layerfs mount --allow-other --uid 1000 --gid 1000 /srv/mmap /mnt/layers
          layerfs /srv/mmap /mnt/layers -o ro,allow_other,poll_interval=1000
        """
    )

    @Argument(help: "The volume (default: $MMAP_BASE_PATH, else data/mmap).")
    var source: String?

    @Argument(help: "Where to mount it (default: mountpoint/).")
    var mountpoint: String?

    @Flag(name: .shortAndLong, help: "Stay in the foreground and log to stderr.")
    var foreground = false

    @Flag(help: "Log every operation.")
    var debug = false

    @Flag(help: "Let other users read the mount (non-root users need user_allow_other in /etc/fuse.conf).")
    var allowOther = false

    @Option(help: "Log to this file instead of syslog when daemonized (reopened on SIGHUP).")
    var logFile: String?

    // The numbers are taken as text, unconditionally, and checked by `Limits`: so that
    // `--poll-interval -1` is refused as out of range rather than as a missing value, and a
    // number too large for its type gets the same message as one past the range.
    @Option(parsing: .unconditional, help: ArgumentHelp("Refuse larger regions: bytes, or 64K, 10M, 1G (\(Limits.maxRegionSize.allowed); default: $MMAP_MAX_SIZE, else no limit).", valueName: "size"))
    var maxRegionSize: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Per-mount readahead in KiB, set through /sys/class/bdi when root (\(Limits.readaheadKB.allowed); default 1024; 0 keeps the kernel's).", valueName: "kib"))
    var readaheadKb: String?

    @Flag(help: "Answer every OPEN instead of turning OPEN/RELEASE off (slower; the daemon then sees every open).")
    var openCalls = false

    @Option(parsing: .unconditional, help: ArgumentHelp("Milliseconds between checks of the volume for updates, besides inotify (\(Limits.pollInterval.allowed); default 500; 0 turns polling off).", valueName: "ms"))
    var pollInterval: String?

    @Flag(help: "Check each layer's SHA-256 before serving its first byte (once per generation); a mismatch answers EIO.")
    var verifyReads = false

    @Flag(help: "Serve requests through FUSE over io_uring (one queue per CPU) where the kernel allows it (fuse parameter enable_uring=Y); else /dev/fuse, logged.")
    var uring = false

    @Option(parsing: .unconditional, help: ArgumentHelp("Show every file and directory as owned by this user id (default: the volume's owners).", valueName: "uid"))
    var uid: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Show every file and directory as owned by this group id.", valueName: "gid"))
    var gid: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Show layers with this octal mode (default: region.mmap's).", valueName: "mode"))
    var fileMode: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Show directories with this octal mode (default: each directory's own).", valueName: "mode"))
    var dirMode: String?

    @Flag(help: "Unmount automatically if the daemon dies (fusermount3 waits for it).")
    var autoUnmount = false

    @Option(help: ArgumentHelp("Write an access log there: one JSON object per line (first read of a layer by a process, refusals, generations, mount and unmount); reopened on SIGHUP.", valueName: "path"))
    var accessLog: String?

    @Option(help: ArgumentHelp("Write the mount's counters there in Prometheus text format (for node_exporter's textfile collector), replaced atomically every --metrics-interval seconds.", valueName: "path"))
    var metricsFile: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds between two writes of --metrics-file (\(Limits.metricsInterval.allowed); default 15).", valueName: "seconds"))
    var metricsInterval: String?
    @Flag(help: "Accept writes: new and changed layers become new generations, as `layerfs update` makes them (see docs/SEMANTICS.md). `ro` wins over it; `rw` alone does not enable it.")
    var writable = false

    @Option(name: .customShort("o"), parsing: .singleValue, help: ArgumentHelp("Mount options, comma-separated (see above).", valueName: "options"))
    var options: [String] = []

    func validate() throws {
        if (source == nil) != (mountpoint == nil) { throw ValidationError("give both SOURCE and MOUNTPOINT, or neither") }
    }

    /// The -o lists, then the long options over them; every number checked against `Limits`.
    func mountOptions() throws(SettingError) -> MountOptions {
        var mo = MountOptions()
        for list in options { try mo.apply(list) }
        mo.foreground = mo.foreground || foreground
        mo.debug = mo.debug || debug
        mo.allowOther = mo.allowOther || allowOther
        mo.logFile = logFile ?? mo.logFile
        if let maxRegionSize {
            mo.maxRegionSize = try Limits.maxRegionSize.parse(maxRegionSize, spelling: "--max-region-size \(maxRegionSize)")
        } else if mo.maxRegionSize == nil {
            mo.maxRegionSize = try Settings.maxRegionSizeFromEnvironment()
        }
        if let readaheadKb { mo.readaheadKB = try Limits.readaheadKB.parse(readaheadKb, spelling: "--readahead-kb \(readaheadKb)") }
        mo.openCalls = mo.openCalls || openCalls
        if let pollInterval { mo.pollInterval = try Limits.pollInterval.parse(pollInterval, spelling: "--poll-interval \(pollInterval)") }
        mo.verifyReads = mo.verifyReads || verifyReads
        mo.uring = mo.uring || uring
        mo.autoUnmount = mo.autoUnmount || autoUnmount
        mo.writable = mo.writable || writable
        if let uid { mo.presentation.uid = try Limits.owner.parse(uid, spelling: "--uid \(uid)") }
        if let gid { mo.presentation.gid = try Limits.owner.parse(gid, spelling: "--gid \(gid)") }
        if let fileMode { mo.presentation.fileMode = try Limits.mode.parse(fileMode, spelling: "--file-mode \(fileMode)") }
        mo.accessLog = accessLog ?? mo.accessLog
        mo.metricsFile = metricsFile ?? mo.metricsFile
        if let metricsInterval { mo.metricsInterval = try Limits.metricsInterval.parse(metricsInterval, spelling: "--metrics-interval \(metricsInterval)") }
        if let dirMode { mo.presentation.directoryMode = try Limits.mode.parse(dirMode, spelling: "--dir-mode \(dirMode)") }
        return mo
    }

    func run() throws {
        let mo = try Settings.checked { () throws(SettingError) in try mountOptions() }

        let plan: MountPlan
        switch Result(catching: { () throws(MountPlan.Failure) in
            try MountPlan(source: Settings.base(source), mountpoint: mountpoint ?? "mountpoint", options: mo)
        }) {
        case .success(let p): plan = p
        case .failure(let failure):
            Settings.printError(failure.description)
            throw ExitCode.failure
        }
        if mo.requestedReadWrite && !mo.isWritable {
            Settings.writeStderr("layerfs: note: -o rw ignored: layerfs mounts are read-only unless --writable (-o writable) is given\n")
        }
        let status = mo.foreground ? plan.runInForeground() : plan.runDaemonized()
        if status != 0 { throw ExitCode(status) }
    }
}
