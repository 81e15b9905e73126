import ArgumentParser
import Glibc
import LayerFormat

/// `layerfs update`: a thin shell around `DimensionUpdate`. It turns the options into
/// changes, finds the dimension from its path, and prints what was done.
struct UpdateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "update",
        abstract: "Change a few layers of a dimension (put, delete, keywords, frequency) without the whole input.",
        // Written out: the generated synopsis lists every option on one long line. ArgumentParser
        // indents the lines after the first by the width of `USAGE: ` itself.
        usage: """
        layerfs update <dimension-dir> [--put <id>=<file>]...
                       [--put-next <file>]... [--delete <id>]...
                       [--keywords <id>=<a,b,...>]... [--frequency <id>=<f>]...
                       [--name <name>] [--time <time>] [--wait <seconds>]
                       [--dry-run] [--file-by-file] [--max-region-size <size>]
        """,
        // Paragraphs are single lines (the trailing backslashes), so that ArgumentParser wraps
        // them to the terminal.
        discussion: """
        All changes of one call become one new generation, written beside the dimension and \
        swapped in atomically, as pack writes one. Layers the call does not change keep their \
        bytes, checksum and updated_at, so a mount keeps serving them from its cache; their \
        bytes are copied by the kernel, and only new bytes are hashed for their checksums.

        --put ID=FILE gives layer ID the bytes of FILE (a new layer, or new bytes for one that \
        exists, which keeps its keywords and frequency); FILE - reads standard input. \
        --put-next FILE adds a layer with the next free id (the highest in use + 1; several \
        are numbered in order).

        --keywords and --frequency change metadata only: bytes, checksum and updated_at stay. \
        A layer may be changed once per call (a put or a delete, one --keywords, one \
        --frequency).

        One writer at a time: the changes are applied, under the dimension's writer lock \
        (.NAME.lock beside it), to the generation current when the lock is taken, so two \
        updates of different layers never lose each other's changes. Another writer holding \
        the lock is waited for up to --wait seconds, then named.

        A dimension that does not exist yet is created: DIMENSION_DIR must be where readers \
        look, BASE/consciousness/DNN (D05 for 5) or BASE/proto/NAME. Its id comes from that \
        name, its name from --name (default: the canonical one). Prints one line per change, \
        then the new region's checksum; --dry-run prints the lines and writes nothing.

        Examples:
          layerfs update data/mmap/consciousness/D05 --put 3=new.txt
          layerfs update data/mmap/consciousness/D05 --put-next notes.txt --delete 1
          make-report | layerfs update data/mmap/proto/draft --put 7=-
          layerfs update data/mmap/consciousness/D05 --keywords 2=time,past --frequency 2=1.5
          layerfs update --dry-run data/mmap/consciousness/D05 --delete 4
          layerfs update --name Notes vol/consciousness/D15 --put-next a.txt
        """
    )

    @Argument(help: "The dimension directory, e.g. data/mmap/consciousness/D05 or data/mmap/proto/draft.")
    var dimensionDir: String

    // .unconditionalSingleValue: `--put-next -` and `--delete -1` are values (the first
    // read from stdin, the second refused), not options.
    @Option(name: .customLong("put"), parsing: .unconditionalSingleValue,
            help: ArgumentHelp("Give layer ID the bytes of FILE (- reads stdin).", valueName: "id=file"))
    var puts: [String] = []

    @Option(name: .customLong("put-next"), parsing: .unconditionalSingleValue,
            help: ArgumentHelp("Add FILE as a new layer with the next free id (- reads stdin).", valueName: "file"))
    var putNexts: [String] = []

    @Option(name: .customLong("delete"), parsing: .unconditionalSingleValue, help: ArgumentHelp("Delete layer ID.", valueName: "id"))
    var deletes: [String] = []

    @Option(name: .customLong("keywords"), parsing: .unconditionalSingleValue,
            help: ArgumentHelp("Set layer ID's keywords, as user.keywords writes them (',' between, '\\,' inside one; empty: none).", valueName: "id=a,b,..."))
    var keywords: [String] = []

    @Option(name: .customLong("frequency"), parsing: .unconditionalSingleValue,
            help: ArgumentHelp("Set layer ID's frequency (a finite number).", valueName: "id=f"))
    var frequencies: [String] = []

    @Option(help: "Set the dimension's name (default: the current one; for a new dimension the canonical one).")
    var name: String?

    @Option(help: "RFC 3339 time of this update: the index's updated_at and that of layers given new bytes (default: $SOURCE_DATE_EPOCH, else now).")
    var time: String?

    // .unconditional: `--wait -1` is a value to refuse as out of range.
    @Option(parsing: .unconditional, help: ArgumentHelp("How long to wait for another writer of the dimension to finish: 0 to 86400 seconds, 0 = do not wait (default: 10).", valueName: "seconds"))
    var wait: String?

    @Flag(help: "Print the changes as they would be made, against the current generation, and write nothing.")
    var dryRun = false

    @Flag(help: "Replace the two files inside the dimension instead of swapping directories (what happens where RENAME_EXCHANGE is refused, e.g. NFS).")
    var fileByFile = false

    @Option(parsing: .unconditional, help: ArgumentHelp("Refuse a region larger than this: bytes, or 64K, 10M, 1G (powers of 1024; \(Limits.maxRegionSize.allowed); default: $MMAP_MAX_SIZE, else no limit).", valueName: "size"))
    var maxRegionSize: String?


    func run() throws {
        var options = DimensionUpdate.Options(time: try Settings.checked { () throws(SettingError) in try Settings.time(time) })
        options.maxRegionSize = try Settings.checked { () throws(SettingError) in try PackCommand.maxRegionSize(maxRegionSize) }
        options.wait = try Settings.checked { () throws(SettingError) in try Settings.wait(wait) }
        options.fileByFile = fileByFile
        let plan = try Self.locate(dimensionDir)
        let changes: [DimensionUpdate.Change]
        do {
            changes = try parseChanges()
        } catch {
            throw Settings.refusal(error.description)
        }
        let update: DimensionUpdate
        do {
            update = try DimensionUpdate(changes, dimensionName: name)
        } catch .nothingToDo {
            throw Settings.refusal("no change given: give --put, --put-next, --delete, --keywords, --frequency or --name (see 'layerfs update --help')")
        } catch {
            throw Settings.refusal(error.description)
        }
        if dryRun {
            do {
                for line in try update.preview(of: plan.location, options: options) { print(line) }
            } catch {
                throw Settings.refusal(error.description)
            }
            return
        }
        if !plan.missingParents.isEmpty {
            // A new volume: refusals that need no bytes come before any directory is made.
            do {
                try update.check(against: nil, location: plan.location, maxRegionSize: options.maxRegionSize)
                try plan.createParents()
            } catch let error as UpdateError {
                throw Settings.refusal(error.description)
            } catch {
                throw Settings.refusal("\(error)")
            }
            // Said, because a mistyped volume path would otherwise become a new volume silently.
            for directory in plan.missingParents { Settings.writeStderr("layerfs: created directory \(PackError.quote(directory))\n") }
        }
        let result: DimensionUpdate.Result
        do {
            result = try update.commit(into: plan.location, options: options)
        } catch {
            throw Settings.refusal(error.description)
        }
        for line in result.applied { print(line) }
        print("\(plan.location.displayPath): \(result.index.layerCount) layers, \(result.header.totalSize) bytes, \(result.header.checksum.checksumString) (\(result.method.rawValue))")
    }

    /// DIMENSION_DIR by the rules pack applies to its output (`PackOutput`), with the id or
    /// proto NAME taken from the path itself.
    static func locate(_ path: String) throws -> PackOutput.Plan {
        let shown = VolumeTarget.trimmed(path)
        do {
            guard let request = try PackOutput.request(forDimensionDirectory: path) else {
                throw Settings.refusal("\(PackError.quote(shown)) is not a dimension directory: give BASE/consciousness/DNN (D05 for dimension 5) or BASE/proto/NAME")
            }
            do {
                return try PackOutput.plan(path, for: request, writer: "update")
            } catch {
                switch error {
                case .outputMismatch(let output, _, let expected, let note):
                    let what: String
                    if case .dimension(let id) = request { what = "dimension \(id)" } else { what = "a proto-dimension" }
                    if let expected {
                        throw Settings.refusal("\(PackError.quote(output)) is not where readers look for \(what)\(note.map { " (\($0))" } ?? ""): expected \(PackError.quote(expected))")
                    }
                    throw Settings.refusal("\(PackError.quote(output)) is not where readers look for \(what): \(note ?? "not a dimension directory")")
                case .outputUnusable(let output, let problem):
                    throw Settings.refusal("dimension directory \(PackError.quote(output)) \(problem)")
                default:
                    throw Settings.refusal(error.description)
                }
            }
        } catch let error as PackError {
            throw Settings.refusal(error.description)
        }
    }

    /// The options as changes, in a fixed order: puts, put-nexts (numbered in the order
    /// given), deletes, keywords, frequencies. The order matters only for put-next ids and
    /// for which of two conflicting changes a message names first.
    func parseChanges() throws(UpdateArgumentError) -> [DimensionUpdate.Change] {
        var changes: [DimensionUpdate.Change] = []
        var stdinUser: String?
        func content(_ file: String, origin: String) throws(UpdateArgumentError) -> LayerContent {
            guard file != "-" else {
                if let first = stdinUser { throw UpdateArgumentError("\(PackError.quote(first)) and \(PackError.quote(origin)) both read standard input; only one change can") }
                stdinUser = origin
                return try Self.readStandardInput()
            }
            do {
                return try LayerContent.open(file)
            } catch {
                throw UpdateArgumentError(error.description)
            }
        }
        for text in puts {
            let origin = "--put " + text
            let (id, file) = try Self.pair(text, origin: origin, form: "ID=FILE, e.g. --put 3=new.txt (FILE - reads stdin)")
            guard !file.isEmpty else { throw UpdateArgumentError("\(PackError.quote(origin)): no FILE after '=' (- reads stdin)") }
            changes.append(.init(.put(id, try content(file, origin: origin)), origin: origin))
        }
        for file in putNexts {
            let origin = "--put-next " + file
            guard !file.isEmpty else { throw UpdateArgumentError("\(PackError.quote(origin)): no FILE (- reads stdin)") }
            changes.append(.init(.putNext(try content(file, origin: origin)), origin: origin))
        }
        for text in deletes {
            let origin = "--delete " + text
            changes.append(.init(.delete(try Self.layerID(text, origin: origin)), origin: origin))
        }
        for text in keywords {
            let origin = "--keywords " + text
            let (id, value) = try Self.pair(text, origin: origin, form: "ID=a,b,..., e.g. --keywords 3=time,past (nothing after '=' clears them)")
            changes.append(.init(.keywords(id, Keywords.split(value)), origin: origin))
        }
        for text in frequencies {
            let origin = "--frequency " + text
            let (id, value) = try Self.pair(text, origin: origin, form: "ID=F, e.g. --frequency 3=1.5")
            guard let frequency = Frequency.parse(value) else {
                throw UpdateArgumentError("\(PackError.quote(origin)): \(PackError.quote(value)) is not a finite number")
            }
            changes.append(.init(.frequency(id, frequency), origin: origin))
        }
        return changes
    }

    /// `ID=VALUE`, split at the first `=` (a file name may hold more).
    static func pair(_ text: String, origin: String, form: String) throws(UpdateArgumentError) -> (UInt32, String) {
        guard let equals = text.firstIndex(of: "=") else { throw UpdateArgumentError("\(PackError.quote(origin)): give \(form)") }
        return (try layerID(String(text[..<equals]), origin: origin), String(text[text.index(after: equals)...]))
    }

    /// A layer id: decimal digits, 1 to 4294967295.
    static func layerID(_ text: String, origin: String) throws(UpdateArgumentError) -> UInt32 {
        guard !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw UpdateArgumentError("\(PackError.quote(origin)): \(PackError.quote(text)) is not a layer id (1 to 4294967295)")
        }
        guard let id = UInt32(text), id >= 1 else {
            throw UpdateArgumentError("\(PackError.quote(origin)): layer id \(text) is out of range (1 to 4294967295)")
        }
        return id
    }

    /// All of stdin, held in memory: its size must be known before the region is laid out,
    /// and a pipe can be read only once.
    static func readStandardInput() throws(UpdateArgumentError) -> LayerContent {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw UpdateArgumentError("standard input cannot be read: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return LayerContent(bytes: bytes, display: "stdin")
    }
}

/// An option of `update` that cannot be turned into a change; printed after `layerfs: `.
struct UpdateArgumentError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
