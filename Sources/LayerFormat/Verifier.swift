import Crypto
import Dispatch
import Glibc

/// What `layerfs verify` checks: structure and permissions, the generation rules (via
/// `Generation`), the header's region checksum and every layer's checksum, and leftovers of
/// interrupted packs. Every problem is a `FormatError` naming file, layer and field.
public struct Verifier {
    public struct Report: Sendable {
        public var problems: [FormatError] = []
        /// What is worth knowing but is no problem: lock files left by writers that died.
        public var notes: [Note] = []
        public var dimensions = 0
        public var emptyDimensions = 0
        public var layers = 0
        /// Layer bytes hashed (the throughput figure counts these).
        public var layerBytes: UInt64 = 0
        public var isClean: Bool { problems.isEmpty }
    }

    /// `FILE: note: message`: printed by verify, never counted as a problem.
    public struct Note: Equatable, Sendable, CustomStringConvertible {
        public var file: String
        public var message: String
        /// "note", or "warning" for what a parser recovered from (Jessy's overflowed header).
        public var label = "note"

        public init(file: String, message: String, label: String = "note") {
            self.file = file; self.message = message; self.label = label
        }

        public var description: String { "\(file): \(label): \(message)" }
    }

    public var maxRegionSize: UInt64?
    /// Called after each dimension with (dimensions done, dimensions in all).
    public var progress: ((Int, Int) -> Void)?

    public init(maxRegionSize: UInt64? = nil) { self.maxRegionSize = maxRegionSize }

    public func verify(volume: Volume) -> Report {
        var report = Report()
        report.problems.append(contentsOf: Verifier.structureProblems(volume))
        for leftover in volume.leftoverPackDirectories() {
            let writer = leftover.contains(".update-") ? "update" : leftover.contains(".import-") ? "import" : "pack"
            report.problems.append(FormatError(.unusableFile, file: leftover,
                                               "leftover of an interrupted \(writer) (safe to remove once no \(writer) is running)"))
        }
        for lock in volume.lockFiles() {
            if let note = Verifier.staleLockNote(volume.base + "/" + lock, display: lock) { report.notes.append(note) }
        }
        let dimensions = volume.dimensions()
        for (i, location) in dimensions.enumerated() {
            verify(dimension: location, into: &report)
            progress?(i + 1, dimensions.count)
        }
        return report
    }

    /// consciousness/ missing, or consciousness/ or proto/ not a readable directory: what
    /// makes a volume's list of dimensions incomplete (so `info` fails on it too).
    public static func structureProblems(_ volume: Volume) -> [FormatError] {
        var problems: [FormatError] = []
        for sub in ["consciousness", "proto"] {
            let path = volume.base + "/" + sub
            if let st = SystemCalls.followStatus(path) {
                if !SystemCalls.isDirectory(st) {
                    problems.append(FormatError(.unusableFile, file: sub, "is \(SystemCalls.describeType(st)), not a directory"))
                } else if access(path, R_OK | X_OK) != 0 {
                    problems.append(FormatError(.unusableFile, file: sub, "directory is not readable: \(SystemCalls.errnoText())"))
                }
            } else if sub == "consciousness" && volume.topLevelDimensionDirectories().isEmpty {
                problems.append(FormatError(.unusableFile, file: sub, "directory is missing"))
            }
        }
        return problems
    }

    public func verify(dimension location: DimensionLocation) -> Report {
        var report = Report()
        let lock = WriterLock.path(for: location)
        if let note = Verifier.staleLockNote(lock, display: lock) { report.notes.append(note) }
        verify(dimension: location, into: &report)
        return report
    }

    /// A lock file that names a writer while no one holds it: that writer died before it
    /// finished (a crash, a kill). Normal and harmless: the swap is atomic, so the dimension
    /// is what the last complete write made it, and the next writer takes the lock as usual.
    /// Told, not counted as a problem, and the file is left alone (it is never removed).
    static func staleLockNote(_ path: String, display: String) -> Note? {
        guard let holder = WriterLock.staleHolder(ofLockFile: path) else { return nil }
        return Note(file: display, message: "names \(holder) as its writer, but no one holds it: that writer stopped before it finished (harmless; the dimension is as the last complete write left it, and the lock file stays)")
    }

    func verify(dimension location: DimensionLocation, into report: inout Report) {
        report.dimensions += 1
        if access(location.directory, R_OK | X_OK) != 0 {
            report.problems.append(FormatError(.unusableFile, file: location.displayPath, "directory is not readable: \(SystemCalls.errnoText())"))
            return
        }
        for name in ["region.mmap", "index.json"] where SystemCalls.fileStatus(location.directory + "/" + name) != nil {
            if access(location.directory + "/" + name, R_OK) != 0 {
                report.problems.append(FormatError(.unusableFile, file: location.displayPath + "/" + name, "not readable: \(SystemCalls.errnoText())"))
                return
            }
        }
        let generation: Generation
        do {
            guard let loaded = try Generation.load(location, maxRegionSize: maxRegionSize) else {
                report.emptyDimensions += 1
                return
            }
            generation = loaded
        } catch {
            report.problems.append(error)
            return
        }
        report.layers += generation.layers.count
        if let legacy = generation.legacy {
            // Nothing to hash against: the checksums were computed from these very bytes.
            report.notes += Verifier.legacyNotes(legacy, file: generation.region.file)
            return
        }
        report.layerBytes += generation.contentBytes
        report.problems.append(contentsOf: checksumProblems(generation))
    }

    /// What verify says about a Jessy legacy region: its layout, that it has no checksums to
    /// check, and any warning of the parser. Notes, not problems: the region is served and
    /// imported as it is.
    public static func legacyNotes(_ legacy: LegacyDetails, file: String) -> [Note] {
        [Note(file: file, message: "Jessy legacy region (\(legacy.layout.formatName) layout): no index.json and no checksums, so its bytes cannot be verified; `layerfs import` converts it to format v1")]
            + legacy.warnings.map { Note(file: $0.file, message: ($0.field.isEmpty ? "" : $0.field + ": ") + $0.message, label: "warning") }
    }

    /// Hashes the region and the layers. The two are independent SHA-256 streams over the same
    /// bytes, so they run on two threads: wall time is one pass, not two. Both read with pread
    /// into a buffer of their own, never through the mapping: a region truncated in place
    /// while verify runs is then a problem reported for the file, where a touch of the mapping
    /// past the new end would kill the process with SIGBUS.
    func checksumProblems(_ generation: Generation) -> [FormatError] {
        let region = generation.region
        region.adviseSequentialReads()
        let indexFile = generation.location.displayPath + "/index.json"
        let regionFile = region.file
        let headerSize = UInt64(RegionHeader.size)
        let regionSize = UInt64(region.size)
        nonisolated(unsafe) var regionProblems: [FormatError] = []
        nonisolated(unsafe) var layerProblems: [FormatError] = []
        DispatchQueue.concurrentPerform(iterations: 2) { part in
            // 1 MiB: large enough that the pread calls cost nothing next to the hashing.
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
            defer { buffer.deallocate() }
            if part == 0 {
                var hasher = SHA256()
                if let failure = region.safeRead(offset: headerSize, count: regionSize - min(regionSize, headerSize), through: buffer, { hasher.update(bufferPointer: $0) }) {
                    regionProblems.append(Verifier.readProblem(failure, file: regionFile, layer: nil, size: regionSize))
                    return
                }
                let digest = Digest256(hasher.finalize())
                if digest != generation.header.checksum {
                    regionProblems.append(FormatError(.checksumMismatch, file: regionFile, field: "header.checksum",
                                                      "header says \(generation.header.checksum.checksumString) but bytes [256, \(region.size)) hash to \(digest.checksumString)"))
                }
            } else {
                for layer in generation.layers {
                    var hasher = SHA256()
                    if let failure = region.safeRead(offset: layer.offset, count: layer.size, through: buffer, { hasher.update(bufferPointer: $0) }) {
                        // The layers after it are past the same end: one line says it.
                        layerProblems.append(Verifier.readProblem(failure, file: regionFile, layer: layer.id, size: regionSize))
                        return
                    }
                    let digest = Digest256(hasher.finalize())
                    if digest != layer.checksum {
                        layerProblems.append(FormatError(.checksumMismatch, file: indexFile, field: "checksum", layer: layer.id,
                                                         "index says \(layer.checksum.checksumString) but the layer's bytes hash to \(digest.checksumString)"))
                    }
                }
            }
        }
        // A truncated file makes both threads fail at the same spot: report it once.
        if let regionProblem = regionProblems.first, regionProblem.kind != .checksumMismatch {
            return [regionProblem] + layerProblems.filter { $0.kind == .checksumMismatch }
        }
        return regionProblems + layerProblems
    }

    static func readProblem(_ failure: MappedRegion.ReadFailure, file: String, layer: UInt32?, size: UInt64) -> FormatError {
        guard failure.code == nil else { return FormatError(.system, file: file, layer: layer, failure.description) }
        return FormatError(.unusableFile, file: file, layer: layer,
                           "\(failure), short of the \(size) bytes it had when opened: truncated in place while being verified (writers must replace a region, never modify it)")
    }
}
