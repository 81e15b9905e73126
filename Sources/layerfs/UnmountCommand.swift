import ArgumentParser
import Foundation
import Glibc

struct UnmountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unmount",
        abstract: "Unmount a layerfs mount, also one whose daemon died (ENOTCONN).",
        discussion: """
        As root the mount is detached with umount2; other users go through fusermount3, and get the same messages. A busy mount is refused with the processes that use it, where /proc shows them.

        Examples:
          layerfs unmount /mnt/layers
          layerfs unmount --lazy /mnt/layers    # detach now; the mount goes once the last file closes
        """
    )

    @Argument(help: "The mountpoint.")
    var mountpoint: String

    @Flag(name: .shortAndLong, help: "Detach now even if files are open; the mount goes once they close.")
    var lazy = false

    func run() throws {
        let path = MountTable.absolute(mountpoint)
        _ = try MountTable.layerfsMount(at: mountpoint)
        flushWrites(path)
        if geteuid() == 0 {
            if umount2(path, lazy ? Int32(MNT_DETACH) : 0) == 0 { return }
            let code = errno
            if code == EBUSY { reportBusy(path) } else {
                Settings.printError("cannot unmount '\(mountpoint)': \(String(cString: strerror(code)))")
            }
            throw ExitCode.failure
        }
        // Unprivileged: the setuid helper does it; its messages are turned into ours.
        let helper = Process()
        let errors = Pipe()
        helper.executableURL = URL(fileURLWithPath: "/bin/fusermount3")
        helper.arguments = ["-u"] + (lazy ? ["-z"] : []) + [path]
        helper.standardError = errors
        do { try helper.run() } catch {
            Settings.printError("cannot run /bin/fusermount3 (package fuse3): \(error)")
            throw ExitCode.failure
        }
        let said = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        helper.waitUntilExit()
        guard helper.terminationStatus != 0 else { return }
        if said.contains("Device or resource busy") {
            reportBusy(path)
        } else if said.contains("not found in /etc/mtab") || said.contains("not permitted") {
            Settings.printError("cannot unmount '\(mountpoint)': it was mounted by another user; only that user or root can unmount it")
        } else {
            let reason = said.split(separator: "\n").last.map { $0.replacingOccurrences(of: "/bin/fusermount3: ", with: "").replacingOccurrences(of: "fusermount3: ", with: "") } ?? "fusermount3 failed"
            Settings.printError("cannot unmount '\(mountpoint)': \(reason)")
        }
        throw ExitCode.failure
    }

    /// A writable mount commits what is staged when its root directory is fsynced: done before
    /// the unmount, whose umount2 returns before the daemon has finished, so that the unmount
    /// completes only once the changes are generations. Read-only mounts answer at once.
    func flushWrites(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        if fsync(fd) != 0 && errno != EROFS && errno != ENOSYS && errno != EINVAL {
            Settings.printError("'\(mountpoint)': staged changes could not be committed (\(String(cString: strerror(errno)))); the daemon's log says why")
        }
    }

    func reportBusy(_ path: String) {
        let users = BusyProcesses.using(path)
        let who = users.isEmpty ? "a process has a file or directory open there" : "in use by " + users.joined(separator: ", ")
        Settings.printError("'\(mountpoint)' is busy (\(who)); close it, or use --lazy")
    }
}

/// The processes whose working directory, root or open files lie under a path: what `fuser -m`
/// would name, from /proc, as far as this user may look.
enum BusyProcesses {
    static func using(_ path: String) -> [String] {
        let prefix = path.hasSuffix("/") ? path : path + "/"
        func under(_ link: String) -> Bool {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: link) else { return false }
            return target == path || target.hasPrefix(prefix)
        }
        var out: [String] = []
        let me = getpid()
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), pid != me else { continue }
            var what: [String] = []
            if under("/proc/\(pid)/cwd") { what.append("working directory") }
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
            if fds.contains(where: { under("/proc/\(pid)/fd/\($0)") }) { what.append("open files") }
            guard !what.isEmpty else { continue }
            let name = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            out.append("pid \(pid) (\(name): \(what.joined(separator: ", ")))")
        }
        return out
    }
}
