import ArgumentParser

@main
struct LayerFS: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "layerfs",
        abstract: "Mount MMAP volumes of dimensional layers as plain read-only files, and pack, verify and describe them.",
        version: version,
        subcommands: [MountCommand.self, UnmountCommand.self, InitCommand.self, PackCommand.self, VerifyCommand.self, InfoCommand.self],
        // mount(8) runs `layerfs SOURCE MOUNTPOINT -o OPTIONS` for fstab type fuse.layerfs.
        defaultSubcommand: MountCommand.self
    )
}
