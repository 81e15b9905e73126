import ArgumentParser
import LayerFormat

struct PackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pack",
        abstract: "Build a dimension (region.mmap + index.json) from the regular files of a directory.",
        // Written out: the generated synopsis lists every flag on one 200-column line.
        // ArgumentParser indents the second line under the first itself.
        usage: """
        layerfs pack --dimension <n> [<options>] <input-dir> <output-dir>
        layerfs pack --proto [<options>] <input-dir> <output-dir>
        """,
        // Paragraphs are single lines (the trailing backslashes), so that ArgumentParser wraps
        // them to the terminal; the examples are short enough never to be wrapped at 80 columns.
        discussion: """
        Each regular file of INPUT_DIR becomes one layer. Ids come from layer-NNN names when \
        every file has one, else 1, 2, ... in name order; a mix of both is refused (--renumber \
        numbers all files in name order). Hidden entries, directories, FIFOs, devices and \
        dangling symlinks are skipped and listed on stderr. Symbolic links are refused unless \
        --follow-symlinks, and never followed out of INPUT_DIR.

        Frequency, keywords and checksum come from the files' user.frequency, user.keywords \
        and user.checksum attributes (a checksum that disagrees with the bytes is an error), \
        updated_at from their mtimes, the dimension name and created_at from the directory's \
        attributes. So a directory copied off a mount with `rsync -aX` packs back into the \
        same dimension.

        OUTPUT_DIR must be where readers look: BASE/consciousness/DNN for --dimension N (D05 \
        for 5, D100 for 100), BASE/proto/NAME for --proto (NAME: 1 to 64 of A-Z a-z 0-9 . _ -, \
        not starting with '.'). Missing parent directories are created, and said so. The output \
        is replaced atomically (hidden sibling, fsync, RENAME_EXCHANGE); an existing \
        dimension's created_at, unknown index fields and unchanged layers' updated_at are kept. \
        Emptying a dimension, or leaving it fewer than half its layers, needs --force.

        One writer at a time: pack holds the dimension's writer lock (.NAME.lock beside it) \
        while it reads the old generation and swaps in the new one, as `layerfs update` does. \
        Another writer holding it is waited for up to --wait seconds, then named.

        Examples:
          layerfs pack --dimension 5 layers/ data/mmap/consciousness/D05
          layerfs pack --proto drafts/ data/mmap/proto/draft
          layerfs pack -v --renumber --dimension 15 notes/ vol/consciousness/D15
          layerfs pack --max-region-size 1G --proto big/ data/mmap/proto/big
          layerfs pack --follow-symlinks --dimension 7 in/ vol/consciousness/D07
          layerfs pack --force --dimension 9 empty/ vol/consciousness/D09
          layerfs pack --wait 60 --dimension 5 layers/ data/mmap/consciousness/D05
          SOURCE_DATE_EPOCH=0 layerfs pack --proto in/ vol/proto/repro
          # copy a dimension off a mount, then pack the copy back:
          rsync -aX mountpoint/D03/ copy/
          layerfs pack --dimension 3 copy/ data/mmap/consciousness/D03
        """
    )

    @Option(help: ArgumentHelp("Build consciousness dimension N (dimension_id N), written to BASE/consciousness/DNN.", valueName: "n"))
    var dimension: UInt32?

    @Flag(help: "Build a proto-dimension (dimension_id 0); OUTPUT_DIR's name is its NAME.")
    var proto = false

    @Option(help: "The dimension's name (default: the input's user.dimension_name, the existing name, else the canonical one).")
    var name: String?

    @Option(help: "RFC 3339 time of this pack: the index's updated_at (default: $SOURCE_DATE_EPOCH, else now).")
    var time: String?

    // .unconditional: `--max-region-size -1` is a value to refuse as out of range, not a
    // missing value followed by an unknown option.
    @Option(parsing: .unconditional, help: ArgumentHelp("Refuse a region larger than this: bytes, or 64K, 10M, 1G (powers of 1024; \(Limits.maxRegionSize.allowed); default: $MMAP_MAX_SIZE, else no limit).", valueName: "size"))
    var maxRegionSize: String?

    // .unconditional: `--wait -1` is a value to refuse as out of range.
    @Option(parsing: .unconditional, help: ArgumentHelp("How long to wait for another writer of the dimension to finish: 0 to 86400 seconds, 0 = do not wait (default: 10).", valueName: "seconds"))
    var wait: String?

    @Flag(help: "Replace the two files inside OUTPUT_DIR instead of swapping directories (what happens where RENAME_EXCHANGE is refused, e.g. NFS).")
    var fileByFile = false

    @Flag(help: "Pack what a symbolic link in INPUT_DIR points to, when that is a regular file inside INPUT_DIR (without it, a link is an error; links out of INPUT_DIR are an error always).")
    var followSymlinks = false

    @Flag(help: "Number the files 1, 2, ... in name order, also those named layer-NNN (without it, ids come from layer-NNN names, and a mix of such names and others is an error).")
    var renumber = false

    @Flag(help: "Replace a dimension that has layers even by an empty one, or by fewer than half its layers (refused without it).")
    var force = false

    @Flag(name: .shortAndLong, help: "Print 'FILE' -> layer ID for each file packed.")
    var verbose = false

    @Argument(help: "Directory whose regular files become layers.")
    var inputDir: String

    @Argument(help: "The dimension directory to write, e.g. data/mmap/consciousness/D05 or data/mmap/proto/draft.")
    var outputDir: String


    func validate() throws {
        if (dimension == nil) == !proto { throw Settings.refusal("give exactly one of --dimension N and --proto (see 'layerfs pack --help')") }
        if let dimension, dimension == 0 { throw Settings.refusal("--dimension 0: 0 is the proto-dimensions' id; use --proto") }
    }

    func run() throws {
        var options = Packer.Options(time: try Settings.checked { () throws(SettingError) in try Settings.time(time) })
        options.dimensionName = name
        options.maxRegionSize = try Settings.checked { () throws(SettingError) in try Self.maxRegionSize(maxRegionSize) }
        options.fileByFile = fileByFile
        let wait = try Settings.checked { () throws(SettingError) in try Settings.wait(self.wait) }
        let request: PackOutput.Request = dimension.map { .dimension($0) } ?? .proto
        let plan: PackOutput.Plan
        do {
            plan = try PackOutput.plan(outputDir, for: request)
        } catch {
            throw Settings.refusal(error.description)
        }
        let output = plan.location.displayPath
        let input: PackInput.Scan
        do {
            input = try PackInput.scan(inputDir, options: PackInput.Options(followSymlinks: followSymlinks, renumber: renumber))
        } catch {
            throw Settings.refusal(error.description)
        }
        // Nothing in the input is left out without a word.
        for entry in input.skipped { Settings.writeStderr("layerfs: skipped \(PackError.quote(entry.path)): \(entry.reason)\n") }
        if verbose {
            for source in input.layers {
                let via = source.path == source.displayPath ? "" : " (via \(PackError.quote(source.path)))"
                print("\(PackError.quote(source.displayPath)) -> layer \(source.id)\(via)")
            }
        }
        // Refused before anything is created or locked: the limit needs no generation.
        do {
            try Packer.checkRegionSize(Packer.layout(input.layers.map(\.size)).totalSize, of: plan.location, maximum: options.maxRegionSize)
        } catch {
            throw Settings.refusal(error.description)
        }
        // The lock file lives beside the dimension: its directory must exist first. Said,
        // because a mistyped volume path would otherwise become a new volume silently.
        do {
            try plan.createParents()
        } catch {
            throw Settings.refusal(error.description)
        }
        for directory in plan.missingParents { Settings.writeStderr("layerfs: created directory \(PackError.quote(directory))\n") }
        // Spec rule 4: held from before the generation being replaced is read (the shrink
        // check must see the one the swap replaces) until after the swap.
        let lock: WriterLock
        do {
            lock = try WriterLock.acquire(plan.location, wait: wait)
        } catch {
            throw Settings.refusal(error.description)
        }
        defer { lock.release() }
        let existing = Packer.Existing.load(plan.location)
        if !force && !existing.allowsReplacement(byLayers: input.layers.count) {
            var shown = inputDir
            while shown.count > 1 && shown.hasSuffix("/") { shown.removeLast() }
            throw Settings.refusal(PackError.shrinking(output: output, layers: existing.layerCount, input: shown,
                                                  inputLayers: input.layers.count).description)
        }
        let progress = Progress(label: "packing \(output)")
        // Progress only for large inputs: small packs finish before it could be read.
        if input.layers.reduce(0, { $0 + $1.size }) > 64 << 20 { options.progress = { progress.update($0, $1) } }
        let result: Packer.Result
        do {
            result = try Packer.pack(input.layers, attributes: input.attributes, into: plan.location, existing: existing, options: options)
            progress.finish()
        } catch {
            progress.finish()
            throw Settings.refusal(error.description)
        }
        print("\(output): \(result.index.layerCount) layers, \(result.header.totalSize) bytes, \(result.header.checksum.checksumString) (\(result.method.rawValue))")
    }

    /// --max-region-size, which takes binary multiples (ByteSize), else $MMAP_MAX_SIZE read the
    /// way every command reads it. The range and the wording are the mount's, so that one
    /// limit is refused in the same words wherever it is given.
    static func maxRegionSize(_ option: String?) throws(SettingError) -> UInt64? {
        guard let option else { return try Settings.maxRegionSizeFromEnvironment() }
        let spelling = "--max-region-size \(option)"
        let limits = Limits.maxRegionSize
        let value: UInt64
        do {
            value = try ByteSize.parse(option)
        } catch {
            switch error {
            case .malformed: throw SettingError("\(spelling): not a size (\(ByteSize.syntax); \(limits.allowed))")
            case .outOfRange: throw SettingError("\(spelling): out of range (\(limits.allowed))")
            }
        }
        guard limits.range.contains(value) else { throw SettingError("\(spelling): out of range (\(limits.allowed))") }
        return value
    }
}
