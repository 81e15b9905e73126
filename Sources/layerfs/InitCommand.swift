import ArgumentParser
import LayerFormat

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a volume's directories (consciousness/D01..D14, proto/, temp/), README.md and .gitignore.",
        // One line per paragraph: ArgumentParser wraps each line itself.
        discussion: [
            "Idempotent: existing files and dimensions are never touched. With --sample, every empty one of D01..D14 gets a few readable text layers.",
            "Examples:\n"
                + "  layerfs init data/mmap\n"
                + "  layerfs init --sample /tmp/demo && layerfs info /tmp/demo",
        ].joined(separator: "\n\n")
    )

    @Argument(help: "The volume directory (default: $MMAP_BASE_PATH, else data/mmap).")
    var base: String?

    @Flag(help: "Also write the small demo volume into the empty dimensions D01..D14.")
    var sample = false

    @Option(help: "RFC 3339 time stamped on the sample (default: 2024-10-24T12:00:00Z, so the sample is the same bytes everywhere).")
    var time: String?

    func run() throws {
        let base = Settings.base(base)
        let stamp = try Settings.checked { () throws(SettingError) in try Settings.time(time ?? "2024-10-24T12:00:00Z") }
        do {
            let result = try VolumeSetup.initialize(base: base, sample: sample, time: stamp)
            print("volume \(VolumeTarget.quote(base)): \(result.created.count) created, \(result.sampled.count) sample dimensions written"
                  + (result.skipped.isEmpty ? "" : ", \(result.skipped.count) left alone (already hold data)"))
        } catch {
            Settings.printError(error.description)
            throw ExitCode.failure
        }
    }
}
