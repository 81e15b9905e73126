import ArgumentParser
import Glibc
import LayerFormat

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Convert a volume of Jessy's legacy regions (or any volume) into a format v1 volume, leaving the source untouched.",
        // One line per paragraph: ArgumentParser wraps each line itself.
        discussion: [
            "Every dimension of SOURCE_BASE (consciousness/DNN, DNN directly under the base as Jessy's init_mmap.py writes it, proto/NAME) "
                + "is written to DEST_BASE/consciousness/DNN (or DEST_BASE/proto/NAME) by the spec's writing procedure: "
                + "a region in Jessy's JSON-header or text layout is converted (layers laid out as pack lays them out, checksums computed, "
                + "Jessy's layer ids shifted by one since v1 ids start at 1, Jessy's own fields kept in each layer's unknown index field `jessy`); "
                + "a v1 dimension is copied byte for byte; a directory with only layers/ is packed from it as `layerfs pack` would; "
                + "an empty dimension stays an empty directory.",
            "Nothing is written under SOURCE_BASE. A dimension that already exists in DEST_BASE is refused (remove it first). "
                + "A dimension that fails (a bad legacy file) is reported naming its file and field; the others are imported, and the exit status is 1.",
            "Examples:\n"
                + "  layerfs import jessy/data/mmap data/mmap\n"
                + "  layerfs import --dimension 1 --dimension 5 old/ new/\n"
                + "  layerfs verify data/mmap",
        ].joined(separator: "\n\n")
    )

    @Option(name: .customLong("dimension"), help: ArgumentHelp("Import only consciousness dimension N (repeatable; default: every dimension).", valueName: "n"))
    var dimensions: [UInt32] = []

    @Option(help: "RFC 3339 time for dimensions packed from layers/ (default: $SOURCE_DATE_EPOCH, else now).")
    var time: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Refuse regions larger than this many bytes (\(Limits.maxRegionSize.allowed); default: $MMAP_MAX_SIZE, else no limit).", valueName: "bytes"))
    var maxRegionSize: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("How long to wait for another writer of a destination dimension: 0 to 86400 seconds (default: 10).", valueName: "seconds"))
    var wait: String?

    @Argument(help: "The volume to read (never written).")
    var sourceBase: String

    @Argument(help: "The volume to write (created if missing).")
    var destBase: String


    func run() throws {
        let time = try Settings.checked { () throws(SettingError) in try Settings.time(self.time) }
        let limit = try Settings.checked { () throws(SettingError) in try Settings.maxRegionSize(maxRegionSize) }
        let wait = try Settings.checked { () throws(SettingError) in try Settings.wait(self.wait) }
        let source = Volume(base: VolumeTarget.trimmed(sourceBase))
        guard source.exists else {
            throw Settings.refusal("\(VolumeTarget.quote(sourceBase)) is not a volume (no consciousness/, proto/ or DNN directory in it)")
        }
        if let problem = Self.overlapProblem(source: source.base, dest: destBase) { throw Settings.refusal(problem) }
        let dest = Volume(base: VolumeTarget.trimmed(destBase))

        var locations = source.dimensions()
        if !dimensions.isEmpty {
            let wanted = Set(dimensions)
            let present = Set(locations.map(\.expectedID))
            for id in dimensions where !present.contains(id) {
                throw Settings.refusal("--dimension \(id): \(VolumeTarget.quote(sourceBase)) has no dimension \(DimensionLocation.directoryName(for: id))")
            }
            locations = locations.filter { if case .consciousness(let id) = $0.kind { wanted.contains(id) } else { false } }
        }
        var failures = 0
        for location in locations {
            let target: DimensionLocation
            switch location.kind {
            case .consciousness(let id):
                let name = DimensionLocation.directoryName(for: id)
                target = DimensionLocation(kind: location.kind, directory: dest.consciousnessDirectory + "/" + name, displayPath: "consciousness/" + name)
            case .proto(let name):
                target = DimensionLocation(kind: location.kind, directory: dest.protoDirectory + "/" + name, displayPath: "proto/" + name)
            }
            do {
                let result = try importOne(location, into: target, time: time, limit: limit, wait: wait)
                for warning in result.warnings { Settings.printError("warning: " + warning.description) }
                let what = switch result.kind {
                case .converted: "converted from \(result.sourceFormat)"
                case .copied: "copied (v1)"
                case .packed: "packed from \(location.displayPath)/layers"
                case .empty: "empty"
                }
                print("\(location.displayPath) -> \(target.displayPath): \(what), \(result.layers) layer\(result.layers == 1 ? "" : "s"), \(result.totalSize) bytes")
            } catch {
                failures += 1
                Settings.printError("\(location.displayPath) not imported: \(error)")
            }
        }
        if failures > 0 {
            Settings.printError("\(failures) of \(locations.count) dimension\(locations.count == 1 ? "" : "s") not imported")
            throw ExitCode.failure
        }
    }

    func importOne(_ location: DimensionLocation, into target: DimensionLocation, time: Timestamp, limit: UInt64?,
                   wait: Double) throws -> VolumeImport.Result {
        try VolumeImport.importDimension(location, into: target, time: time, maxRegionSize: limit, wait: wait)
    }

    /// DEST_BASE inside SOURCE_BASE (or the same) would write under the source; SOURCE_BASE
    /// inside DEST_BASE is refused too, since the new dimensions would land beside the ones
    /// being read. Compared by real paths; DEST_BASE may not exist yet, so its nearest
    /// existing ancestor is resolved and the rest appended.
    static func overlapProblem(source: String, dest: String) -> String? {
        guard let realSource = SystemCalls.realPath(source) else { return "\(VolumeTarget.quote(source)) cannot be resolved: \(String(cString: strerror(errno)))" }
        var existing = VolumeTarget.trimmed(dest.isEmpty ? "." : dest)
        var rest: [String] = []
        while SystemCalls.realPath(existing) == nil {
            let name = String(existing.split(separator: "/").last ?? "")
            let parent = existing.contains("/") ? String(existing[..<existing.lastIndex(of: "/")!]) : "."
            if parent == existing || name.isEmpty { break }
            rest.insert(name, at: 0)
            existing = parent
        }
        guard let realExisting = SystemCalls.realPath(existing) else { return "\(VolumeTarget.quote(dest)) cannot be resolved" }
        let realDest = ([realExisting == "/" ? "" : realExisting] + rest).joined(separator: "/")
        func inside(_ a: String, _ b: String) -> Bool { a == b || a.hasPrefix(b == "/" ? "/" : b + "/") }
        if inside(realDest, realSource) {
            return "DEST_BASE \(VolumeTarget.quote(dest)) lies inside SOURCE_BASE \(VolumeTarget.quote(source)): import never writes under its source"
        }
        if inside(realSource, realDest) {
            return "SOURCE_BASE \(VolumeTarget.quote(source)) lies inside DEST_BASE \(VolumeTarget.quote(dest)): give a destination outside the source"
        }
        return nil
    }
}
