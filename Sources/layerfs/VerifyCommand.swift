import ArgumentParser
import LayerFormat

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a volume or one dimension: structure, permissions, header against index, bounds, overlaps and every checksum.",
        // One line per paragraph: ArgumentParser wraps each line itself, and a line break in
        // the source would be a break in the middle of a sentence on the terminal.
        discussion: [
            "Prints one line per problem naming the file, layer and field, then a summary. "
                + "Exits 0 only when clean; empty dimensions are clean. Leftover hidden directories of an interrupted pack or update are reported as problems. "
                + "A writer lock (.NAME.lock) left naming a writer that died is reported as a note, which is no problem.",
            "--print-sums checks nothing: it prints the index's checksums of one dimension's layers as a `sha256sum -c` file "
                + "(HEX, two spaces, layer-NNN), to check a mount of the volume, or a copy of its layers, with sha256sum alone. "
                + "Its dimension directory defaults to the current directory.",
            "Examples:\n"
                + "  layerfs verify data/mmap\n"
                + "  cd data/mmap && layerfs verify .\n"
                + "  layerfs verify -q data/mmap/consciousness/D05\n"
                + "  layerfs verify --print-sums data/mmap/consciousness/D05 > /tmp/D05.sums\n"
                + "  cd mountpoint/D05 && sha256sum -c /tmp/D05.sums",
        ].joined(separator: "\n\n")
    )

    @Argument(help: "A volume (default: $MMAP_BASE_PATH, else data/mmap) or one dimension directory.")
    var path: String?

    // .unconditional: `--max-region-size -1` is a value to refuse as out of range.
    @Option(parsing: .unconditional, help: ArgumentHelp("Refuse regions larger than this many bytes (\(Limits.maxRegionSize.allowed); default: $MMAP_MAX_SIZE, else no limit).", valueName: "bytes"))
    var maxRegionSize: String?

    @Flag(name: .shortAndLong, help: "Print the summary only when there are problems.")
    var quiet = false

    @Flag(help: "Print the layers' checksums of one dimension as a `sha256sum -c` file instead of verifying.")
    var printSums = false

    func run() throws {
        let limit = try Settings.checked { () throws(SettingError) in try Settings.maxRegionSize(maxRegionSize) }
        // --print-sums names one dimension: the default volume cannot be one, the directory
        // the user stands in can (`cd vol/consciousness/D05 && layerfs verify --print-sums`).
        let given = printSums ? (path ?? ".") : Settings.base(path)
        let target: VolumeTarget
        do {
            target = try VolumeTarget.resolve(given, command: printSums ? "verify --print-sums" : "verify", isDefault: path == nil && !printSums)
        } catch {
            Settings.printError(error.description)
            throw ExitCode.failure
        }
        if printSums { return try printChecksums(target, given: given, maxRegionSize: limit) }

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
        if !quiet { for note in report.notes { print(note.description) } }
        if !quiet || !report.isClean {
            let mb = Double(report.layerBytes) / 1_000_000
            print("\(given): \(plural(report.dimensions, "dimension")) (\(report.emptyDimensions) empty), \(plural(report.layers, "layer")), "
                  + "\(String(format: "%.1f", mb)) MB of layers hashed: "
                  + (report.isClean ? "OK" : "\(report.problems.count) problem\(report.problems.count == 1 ? "" : "s")"))
        }
        if !report.isClean { throw ExitCode.failure }
    }

    /// `HEX  layer-NNN` for each layer, by id: the lines `sha256sum` writes for files named
    /// as the mount names them, so `cd MOUNT/D05 && sha256sum -c FILE` checks every layer.
    /// The sums are the index's; the generation is loaded (and so checked for structure), but
    /// no byte is hashed: that is what plain verify is for.
    func printChecksums(_ target: VolumeTarget, given: String, maxRegionSize: UInt64?) throws {
        guard case .dimension(let location) = target else {
            Settings.printError("--print-sums needs one dimension directory, not the volume \(VolumeTarget.quote(given)) "
                                + "(e.g. \(VolumeTarget.quote(VolumeTarget.trimmed(given) + "/consciousness/D01")))")
            throw ExitCode.failure
        }
        do {
            // An empty dimension has no layers: an empty list, which sha256sum -c refuses, as
            // it should; nothing there to check.
            guard let generation = try Generation.load(location, maxRegionSize: maxRegionSize) else { return }
            var out = ""
            for layer in generation.layers {
                out += layer.checksum.hex + "  " + PackInput.fileName(forLayer: layer.id) + "\n"
            }
            print(out, terminator: "")
        } catch {
            Settings.printError(error.description)
            throw ExitCode.failure
        }
    }

    func plural(_ n: Int, _ word: String) -> String { "\(n) \(word)\(n == 1 ? "" : "s")" }
}
