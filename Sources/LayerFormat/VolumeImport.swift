import Glibc

/// `layerfs import`: one dimension of a source volume written into a destination volume by
/// the spec's writing procedure (hidden sibling, fsync, swap; `Packer.swap`), never touching
/// the source. A Jessy legacy region is converted (its layers laid out by `Packer.layout` and
/// copied by `RegionAssembly`, the writers' own code); a v1 dimension is copied byte for
/// byte; a directory with only `layers/` is packed (`Packer.pack`).
public enum VolumeImport {
    public enum Kind: String, Sendable {
        case converted, copied, packed, empty
    }

    public struct Result: Sendable {
        public var kind: Kind
        /// For converted and copied dimensions, the layout the source had.
        public var sourceFormat: String
        public var layers: Int
        public var totalSize: UInt64
        public var warnings: [LegacyRegion.Warning]
    }

    /// Imports `source` into `target`, which must not exist yet (import never replaces a
    /// dimension), holding `target`'s writer lock (waiting up to `wait` seconds for it).
    public static func importDimension(_ source: DimensionLocation, into target: DimensionLocation, time: Timestamp,
                                       maxRegionSize: UInt64?, wait: Double) throws(FormatError) -> Result {
        try Packer.makeDirectories(Packer.parentDirectory(of: target.directory))
        let lock: WriterLock
        do {
            lock = try WriterLock.acquire(target, wait: wait)
        } catch {
            throw FormatError(.unusableFile, file: target.displayPath, error.description)
        }
        defer { lock.release() }
        // Under the lock: no other writer can create it between this look and the swap.
        if SystemCalls.fileStatus(target.directory) != nil {
            throw FormatError(.unusableFile, file: target.displayPath, "exists already in the destination; remove it first (import never replaces a dimension)")
        }
        return try importUnlocked(source, into: target, time: time, maxRegionSize: maxRegionSize)
    }

    static func importUnlocked(_ source: DimensionLocation, into target: DimensionLocation, time: Timestamp,
                               maxRegionSize: UInt64?) throws(FormatError) -> Result {
        if let generation = try Generation.load(source, maxRegionSize: maxRegionSize) {
            if let legacy = generation.legacy {
                let (layers, size) = try convert(generation, into: target)
                return Result(kind: .converted, sourceFormat: legacy.layout.formatName, layers: layers, totalSize: size, warnings: legacy.warnings)
            }
            try copy(generation, into: target)
            return Result(kind: .copied, sourceFormat: "v1", layers: generation.layers.count, totalSize: UInt64(generation.region.size), warnings: [])
        }
        let layersDirectory = source.directory + "/layers"
        if let st = SystemCalls.followStatus(layersDirectory), SystemCalls.isDirectory(st) {
            let scan: PackInput.Scan
            do {
                scan = try PackInput.scan(layersDirectory)
            } catch {
                throw FormatError(.unusableFile, file: source.displayPath + "/layers", error.description)
            }
            var options = Packer.Options(time: time)
            options.maxRegionSize = maxRegionSize
            let result = try Packer.pack(scan.layers, attributes: scan.attributes, into: target,
                                         existing: Packer.Existing(generation: nil, layerCount: 0), options: options)
            return Result(kind: .packed, sourceFormat: "layers/", layers: Int(result.index.layerCount), totalSize: result.header.totalSize, warnings: [])
        }
        try Packer.makeDirectories(target.directory)
        return Result(kind: .empty, sourceFormat: "empty", layers: 0, totalSize: 0, warnings: [])
    }

    /// A legacy generation as a v1 one: the same layers (ids, checksums, frequency, keywords,
    /// updated_at, Jessy's fields as the unknown field `jessy`), laid out as writers lay them
    /// out. The bytes come from the generation's sealed copy of the region, which its
    /// checksums were computed from, so they are the bytes the checksums describe.
    static func convert(_ generation: Generation, into location: DimensionLocation) throws(FormatError) -> (Int, UInt64) {
        let layers = generation.layers // sorted by id
        let (offsets, totalSize) = Packer.layout(layers.map(\.size))
        let regionDisplay = location.displayPath + "/region.mmap"
        let (sibling, parent) = try makeSibling(location)
        var succeeded = false
        defer { if !succeeded { SystemCalls.removeTree(sibling) } }
        let fd = open(sibling + "/region.mmap", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SystemCalls.fail(regionDisplay, "create") }
        defer { close(fd) }
        guard ftruncate(fd, off_t(totalSize)) == 0 else { throw SystemCalls.fail(regionDisplay, "ftruncate") }
        var assembly = RegionAssembly(output: fd, display: regionDisplay, current: generation.region, kernelCopy: true)
        defer { assembly.deallocate() }
        let pieces = zip(offsets, layers).map { (offset: $0, piece: RegionAssembly.Piece.kept($1)) }
        let (regionSum, _) = try assembly.write(pieces, totalSize: totalSize)
        let header = RegionHeader(dimensionID: location.expectedID, layerCount: UInt32(layers.count), totalSize: totalSize, checksum: regionSum)
        try SystemCalls.writeAll(fd, header.serialized, at: 0, display: regionDisplay)
        guard fsync(fd) == 0 else { throw SystemCalls.fail(regionDisplay, "fsync") }
        var entries: [LayerEntry] = []
        entries.reserveCapacity(layers.count)
        for (layer, offset) in zip(layers, offsets) {
            var entry = layer
            entry.offset = offset
            entry.updatedAt = generation.updatedAt(of: layer)
            entries.append(entry)
        }
        let index = DimensionIndex(dimensionID: location.expectedID, dimensionName: generation.dimensionName,
                                   createdAt: generation.createdAt, updatedAt: generation.updatedAt,
                                   layerCount: UInt32(entries.count), totalSize: totalSize, regionChecksum: header.checksum,
                                   layers: entries, extraFields: generation.index.extraFields)
        try Packer.writeFile(sibling + "/index.json", index.serialized, display: location.displayPath + "/index.json")
        try SystemCalls.fsyncPath(sibling, display: sibling)
        _ = try Packer.swap(sibling, into: location.directory, parent: parent, fileByFile: false)
        succeeded = true
        return (layers.count, totalSize)
    }

    /// A v1 dimension unchanged: the region file that was validated (read through the
    /// descriptor `generation` holds) and the index, checked to be the one that was parsed.
    static func copy(_ generation: Generation, into location: DimensionLocation) throws(FormatError) {
        let (sibling, parent) = try makeSibling(location)
        var succeeded = false
        defer { if !succeeded { SystemCalls.removeTree(sibling) } }
        let regionDisplay = location.displayPath + "/region.mmap"
        let fd = open(sibling + "/region.mmap", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SystemCalls.fail(regionDisplay, "create") }
        defer { close(fd) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { buffer.deallocate() }
        var written: UInt64 = 0
        var writeError: FormatError?
        let failure = generation.region.safeRead(offset: 0, count: UInt64(generation.region.size), through: buffer) { bytes in
            guard writeError == nil else { return }
            do throws(FormatError) { try SystemCalls.writeAll(fd, bytes, at: written, display: regionDisplay) } catch { writeError = error }
            written += UInt64(bytes.count)
        }
        if let writeError { throw writeError }
        if let failure { throw FormatError(.unusableFile, file: generation.region.file, "\(failure) while being copied") }
        guard fsync(fd) == 0 else { throw SystemCalls.fail(regionDisplay, "fsync") }
        let sourceIndex = generation.location.displayPath + "/index.json"
        let (bytes, status) = try SystemCalls.readFile(generation.location.indexPath, display: sourceIndex)
        guard FileIdentity(status) == generation.indexFile else {
            throw FormatError(.unusableFile, file: sourceIndex, "was replaced while being imported (a writer is at work): run import again")
        }
        try Packer.writeFile(sibling + "/index.json", bytes, display: location.displayPath + "/index.json")
        try SystemCalls.fsyncPath(sibling, display: sibling)
        _ = try Packer.swap(sibling, into: location.directory, parent: parent, fileByFile: false)
        succeeded = true
    }

    /// `.DNN.import-<random hex>` beside the target, as pack and update name theirs.
    static func makeSibling(_ location: DimensionLocation) throws(FormatError) -> (String, String) {
        let parent = Packer.parentDirectory(of: location.directory)
        try Packer.makeDirectories(parent)
        let baseName = String(location.directory.split(separator: "/").last ?? "dimension")
        let sibling = parent + "/." + baseName + ".import-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        guard mkdir(sibling, 0o755) == 0 else { throw SystemCalls.fail(sibling, "mkdir") }
        return (sibling, parent)
    }
}
