import ArgumentParser
import Glibc
import LayerFormat

@main
struct LayerFS: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "layerfs",
        abstract: "Mount MMAP volumes of dimensional layers as plain read-only files, and pack, update, verify and describe them.",
        // One line per paragraph: ArgumentParser wraps each line itself.
        discussion: [
            "`mount` is the default subcommand: `layerfs SOURCE MOUNTPOINT` mounts, as mount(8) runs it for an fstab line of type fuse.layerfs.",
            "Examples:\n"
                + "  layerfs init --sample data/mmap\n"
                + "  layerfs mount data/mmap mountpoint\n"
                + "  layerfs update data/mmap/consciousness/D05 --put 3=new.txt\n"
                + "  layerfs verify data/mmap\n"
                + "  layerfs info data/mmap\n"
                + "  layerfs unmount mountpoint",
        ].joined(separator: "\n\n"),
        version: version,
        subcommands: [MountCommand.self, UnmountCommand.self, InitCommand.self, PackCommand.self, UpdateCommand.self, VerifyCommand.self, InfoCommand.self, StatusCommand.self, ImportCommand.self],
        // mount(8) runs `layerfs SOURCE MOUNTPOINT -o OPTIONS` for fstab type fuse.layerfs.
        defaultSubcommand: MountCommand.self
    )

    /// EX_USAGE (sysexits.h), what ArgumentParser exits with for a bad command line.
    static let usageStatus: Int32 = 64

    /// Two command lines are answered before ArgumentParser sees them, because with `mount`
    /// as the default subcommand it would take them as a mount of a SOURCE that is not there.
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let first = arguments.first, let meant = SubcommandGuess.suggestion(for: first) {
            Settings.printError("unknown subcommand \(VolumeTarget.quote(first)); did you mean \(VolumeTarget.quote(meant))?")
            exit(withError: ExitCode(usageStatus))
        }
        // Bare `layerfs` is someone finding out what the program does, unless the default
        // volume is there to be mounted: show them the usage, not only an error.
        if arguments.isEmpty {
            let base = Settings.base(nil)
            if !Volume(base: base).exists {
                Settings.writeStderr(helpMessage() + "\n\n")
                let origin = Settings.environment("MMAP_BASE_PATH") == nil ? "the default" : "from $MMAP_BASE_PATH"
                Settings.printError("no volume at \(VolumeTarget.quote(base)) (\(origin)) to mount; give SOURCE and MOUNTPOINT, or a subcommand")
                exit(withError: ExitCode(usageStatus))
            }
        }
        main(nil)
    }
}
