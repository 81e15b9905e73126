import Dispatch
import Glibc

/// What `layerfs verify` checks: structure and permissions, the generation rules (via
/// `Generation`), the header's region checksum and every layer's checksum, and leftovers of
/// interrupted packs. Every problem is a `FormatError` naming file, layer and field.
public struct Verifier {
    public struct Report: Sendable {
        public var problems: [FormatError] = []
        public var dimensions = 0
        public var emptyDimensions = 0
        public var layers = 0
        /// Layer bytes hashed (the throughput figure counts these).
        public var layerBytes: UInt64 = 0
        public var isClean: Bool { problems.isEmpty }
    }

    public var maxRegionSize: UInt64?
    /// Called after each dimension with (dimensions done, dimensions in all).
    public var progress: ((Int, Int) -> Void)?

    public init(maxRegionSize: UInt64? = nil) { self.maxRegionSize = maxRegionSize }

    public func verify(volume: Volume) -> Report {
        var report = Report()
        for sub in ["consciousness", "proto"] {
            let path = volume.base + "/" + sub
            if let st = SystemCalls.followStatus(path) {
                if !SystemCalls.isDirectory(st) {
                    report.problems.append(FormatError(.unusableFile, file: sub, "is \(SystemCalls.describeType(st)), not a directory"))
                } else if access(path, R_OK | X_OK) != 0 {
                    report.problems.append(FormatError(.unusableFile, file: sub, "directory is not readable: \(SystemCalls.errnoText())"))
                }
            } else if sub == "consciousness" {
                report.problems.append(FormatError(.unusableFile, file: sub, "directory is missing"))
            }
        }
        for leftover in volume.leftoverPackDirectories() {
            report.problems.append(FormatError(.unusableFile, file: leftover,
                                               "leftover of an interrupted pack (safe to remove once no pack is running)"))
        }
        let dimensions = volume.dimensions()
        for (i, location) in dimensions.enumerated() {
            verify(dimension: location, into: &report)
            progress?(i + 1, dimensions.count)
        }
        return report
    }

    public func verify(dimension location: DimensionLocation) -> Report {
        var report = Report()
        verify(dimension: location, into: &report)
        return report
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
        report.layerBytes += generation.contentBytes
        report.problems.append(contentsOf: checksumProblems(generation))
    }

    /// Hashes the region and the layers. The two are independent SHA-256 streams over the same
    /// bytes, so they run on two threads: wall time is one pass, not two.
    func checksumProblems(_ generation: Generation) -> [FormatError] {
        let region = generation.region
        region.adviseSequential()
        let indexFile = generation.location.displayPath + "/index.json"
        let regionFile = region.file
        nonisolated(unsafe) var regionProblem: FormatError?
        nonisolated(unsafe) var layerProblems: [FormatError] = []
        DispatchQueue.concurrentPerform(iterations: 2) { part in
            if part == 0 {
                let body = region.bytes(offset: UInt64(RegionHeader.size), count: UInt64(region.size - RegionHeader.size))
                let digest = Digest256.sha256(body)
                if digest != generation.header.checksum {
                    regionProblem = FormatError(.checksumMismatch, file: regionFile, field: "header.checksum",
                                                "header says \(generation.header.checksum.checksumString) but bytes [256, \(region.size)) hash to \(digest.checksumString)")
                }
            } else {
                for layer in generation.layers {
                    let digest = Digest256.sha256(generation.bytes(of: layer))
                    if digest != layer.checksum {
                        layerProblems.append(FormatError(.checksumMismatch, file: indexFile, field: "checksum", layer: layer.id,
                                                         "index says \(layer.checksum.checksumString) but the layer's bytes hash to \(digest.checksumString)"))
                    }
                }
            }
        }
        return (regionProblem.map { [$0] } ?? []) + layerProblems
    }
}
