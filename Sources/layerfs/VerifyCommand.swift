import ArgumentParser
import LayerFormat

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a volume or one dimension: structure, permissions, header against index, bounds, overlaps and every checksum.",
        discussion: "Prints one line per problem naming the file, layer and field, then a summary. Exits 0 only when clean; empty dimensions are clean. Leftover hidden pack directories are reported."
    )

    @Argument(help: "A volume (default: $MMAP_BASE_PATH, else data/mmap) or one dimension directory.")
    var path: String?

    // .unconditional: `--max-region-size -1` is a value to refuse as out of range.
    @Option(parsing: .unconditional, help: ArgumentHelp("Refuse regions larger than this many bytes (\(Limits.maxRegionSize.allowed); default: $MMAP_MAX_SIZE, else no limit).", valueName: "bytes"))
    var maxRegionSize: String?

    @Flag(name: .shortAndLong, help: "Print the summary only when there are problems.")
    var quiet = false

    func run() throws {
        let limit = try Settings.checked { () throws(SettingError) in try Settings.maxRegionSize(maxRegionSize) }
        let given = Settings.base(path)
        let target: VolumeTarget
        do {
            target = try VolumeTarget.resolve(given, command: "verify", isDefault: path == nil)
        } catch {
            Settings.printError(error.description)
            throw ExitCode.failure
        }
        var verifier = Verifier(maxRegionSize: limit)
        let report: Verifier.Report
        switch target {
        case .dimension(let location):
            report = verifier.verify(dimension: location)
        case .volume(let volume):
            let progress = Progress(label: "verifying")
            verifier.progress = { progress.update(UInt64($0), UInt64($1)) }
            report = verifier.verify(volume: volume)
            progress.finish()
        }
        for problem in report.problems { print(problem.description) }
        if !quiet || !report.isClean {
            let mb = Double(report.layerBytes) / 1_000_000
            print("\(given): \(plural(report.dimensions, "dimension")) (\(report.emptyDimensions) empty), \(plural(report.layers, "layer")), "
                  + "\(String(format: "%.1f", mb)) MB of layers hashed: "
                  + (report.isClean ? "OK" : "\(report.problems.count) problem\(report.problems.count == 1 ? "" : "s")"))
        }
        if !report.isClean { throw ExitCode.failure }
    }

    func plural(_ n: Int, _ word: String) -> String { "\(n) \(word)\(n == 1 ? "" : "s")" }
}
