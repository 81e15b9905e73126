import ArgumentParser

@main
struct LayerFS: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "layerfs",
        abstract: "Mount MMAP volumes of dimensional layers as plain read-only files, and pack, verify and describe them.",
        version: version,
        subcommands: [InitCommand.self, PackCommand.self, VerifyCommand.self, InfoCommand.self],
        defaultSubcommand: nil
    )
}
