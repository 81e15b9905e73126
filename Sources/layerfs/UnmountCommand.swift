import ArgumentParser
import Foundation
import Glibc

struct UnmountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unmount",
        abstract: "Unmount a layerfs mount, also one whose daemon died (ENOTCONN)."
    )

    @Argument(help: "The mountpoint.")
    var mountpoint: String

    @Flag(name: .shortAndLong, help: "Detach now even if files are open; the mount goes once they close.")
    var lazy = false

    func run() throws {
        let path = MountTable.absolute(mountpoint)
        guard let mount = MountTable.mount(at: path) else {
            Settings.printError("\(mountpoint) is not mounted")
            throw ExitCode.failure
        }
        guard mount.type == "fuse.layerfs" else {
            Settings.printError("\(mountpoint) is a \(mount.type) mount, not layerfs")
            throw ExitCode.failure
        }
        if geteuid() == 0 {
            if umount2(path, lazy ? Int32(MNT_DETACH) : 0) == 0 { return }
            let code = errno
            if code == EBUSY {
                Settings.printError("\(mountpoint) is busy (a process has a file or directory open there); close it, or use --lazy")
            } else {
                Settings.printError("cannot unmount \(mountpoint): \(String(cString: strerror(code)))")
            }
            throw ExitCode.failure
        }
        // Unprivileged: the setuid helper does it.
        let helper = Process()
        helper.executableURL = URL(fileURLWithPath: "/bin/fusermount3")
        helper.arguments = ["-u"] + (lazy ? ["-z"] : []) + [path]
        do { try helper.run() } catch {
            Settings.printError("cannot run fusermount3: \(error)")
            throw ExitCode.failure
        }
        helper.waitUntilExit()
        if helper.terminationStatus != 0 { throw ExitCode.failure }
    }
}
