import Glibc

/// One consistent generation of a dimension: an index and a region that agree, validated and
/// mapped. Immutable once built: a newer generation is a new object, so readers of this one
/// keep consistent bytes.
public final class Generation: @unchecked Sendable {
    // @unchecked: all stored properties are immutable after init.
    public let location: DimensionLocation
    public let header: RegionHeader
    public let index: DimensionIndex
    /// Layers sorted by id.
    public let layers: [LayerEntry]
    public let region: MappedRegion
    /// Defaults applied: canonical name, region mtime for absent timestamps.
    public let dimensionName: String
    public let createdAt: Timestamp
    public let updatedAt: Timestamp
    /// The region.mmap that is mapped (fstat of its descriptor).
    public let regionFile: FileIdentity
    /// The index.json the index was parsed from (fstat of the descriptor it was read through).
    public let indexFile: FileIdentity
    /// Set for a region in one of Jessy's legacy layouts (no index.json): the header and the
    /// index above are what a v1 writer would have written for it, computed at load.
    public let legacy: LegacyDetails?

    /// Loads the dimension in `location`.
    ///
    /// - Returns: nil for an empty dimension (neither file present), which is not an error.
    /// - Throws: `FormatError` naming the file and field for anything else that is wrong,
    ///   including a pair that is not one generation (caught half way through an update).
    public static func load(_ location: DimensionLocation, maxRegionSize: UInt64? = nil) throws(FormatError) -> Generation? {
        let regionDisplay = location.displayPath + "/region.mmap"
        let indexDisplay = location.displayPath + "/index.json"
        // Absent is a state (an empty dimension); any other failure to look is an error, or an
        // unreadable dimension would pass for an empty one.
        func present(_ path: String, _ display: String) throws(FormatError) -> Bool {
            var st = stat()
            if lstat(path, &st) == 0 { return true }
            if errno == ENOENT { return false }
            throw SystemCalls.fail(display, "cannot be looked at")
        }
        let hasRegion = try present(location.regionPath, regionDisplay)
        let hasIndex = try present(location.indexPath, indexDisplay)
        switch (hasRegion, hasIndex) {
        case (false, false): return nil
        case (true, false):
            // No index: a region Jessy wrote in one of its legacy layouts, or a broken v1 pair.
            if let legacy = try loadLegacy(location, display: regionDisplay, maxRegionSize: maxRegionSize) { return legacy }
            throw FormatError(.unusableFile, file: indexDisplay, "file is missing (region.mmap is present)")
        case (false, true): throw FormatError(.unusableFile, file: regionDisplay, "file is missing (index.json is present)")
        case (true, true): break
        }
        let region = try MappedRegion(path: location.regionPath, display: regionDisplay, maxSize: maxRegionSize)
        // One open: the bytes and the identity come from the same descriptor.
        let (indexBytes, indexStatus) = try SystemCalls.readFile(location.indexPath, display: indexDisplay)
        if indexBytes.isEmpty { throw FormatError(.unusableFile, file: indexDisplay, "file is empty") }
        let index = try DimensionIndex(parsing: indexBytes, file: indexDisplay)
        return try Generation(location: location, region: region, index: index, indexFile: FileIdentity(indexStatus))
    }

    /// A region without index.json in one of Jessy's layouts; nil when it is a v1 region (the
    /// caller then reports the missing index); an error naming the header when it is neither. The region is read into memory
    /// (`MappedRegion(snapshotOf:)`), not mapped: Jessy rewrites its file in place, and a
    /// generation must keep the bytes it was loaded with.
    static func loadLegacy(_ location: DimensionLocation, display: String, maxRegionSize: UInt64?) throws(FormatError) -> Generation? {
        var head = [UInt8](repeating: 0, count: LegacyRegion.jsonHeaderSize)
        let (fd, _) = try SystemCalls.openRegular(location.regionPath, display: display)
        let got = head.withUnsafeMutableBytes { b in SystemCalls.retrying { pread(fd, b.baseAddress, b.count, 0) } }
        close(fd)
        if got < 0 { throw SystemCalls.fail(display, "read") }
        let first = Array(head[0..<got])
        // A v1 region (its magic) without its index is a broken v1 pair: the caller says so.
        if first.starts(with: RegionHeader.magic) { return nil }
        guard LegacyRegion.detect(first) != nil else {
            throw FormatError(.malformed, file: display, field: "header",
                              "there is no index.json beside it, and it is neither a v1 region (no \"MMAP\" magic), a Jessy JSON region (no \"JSON\" marker in the first \(LegacyRegion.jsonHeaderSize) bytes) nor a Jessy text region (does not begin with \"DIMENSION:\")")
        }
        let region = try MappedRegion(snapshotOf: location.regionPath, display: display, maxSize: maxRegionSize)
        let all = region.bytes(offset: 0, count: UInt64(region.size))
        let parsed = try LegacyRegion(parsing: all, file: display)
        let mtime = Timestamp(seconds: Int64(region.status.st_mtim.tv_sec))
        let (index, attributes) = try parsed.index(bytes: all, dimensionID: location.expectedID, fallbackTime: mtime, file: display)
        return Generation(location: location, region: region, legacyIndex: index,
                          details: LegacyDetails(layout: parsed.layout, warnings: parsed.warnings, layers: attributes))
    }

    /// A legacy generation: the index was computed from the region, so there is nothing to
    /// check one against the other; the header is the one a v1 writer would have written
    /// (its checksum, `user.generation`, covers the whole file).
    init(location: DimensionLocation, region: MappedRegion, legacyIndex index: DimensionIndex, details: LegacyDetails) {
        self.location = location
        self.header = RegionHeader(dimensionID: index.dimensionID, layerCount: index.layerCount, totalSize: UInt64(region.size),
                                   checksum: Digest256.sha256(region.bytes(offset: 0, count: UInt64(region.size))))
        self.index = index
        self.layers = index.layers
        self.region = region
        self.regionFile = FileIdentity(region.status)
        self.indexFile = FileIdentity(device: 0, inode: 0, size: 0, mtimeSeconds: 0, mtimeNanoseconds: 0)
        self.legacy = details
        self.dimensionName = index.dimensionName ?? location.defaultDimensionName
        let mtime = Timestamp(seconds: Int64(region.status.st_mtim.tv_sec))
        self.createdAt = index.createdAt ?? mtime
        self.updatedAt = index.updatedAt ?? mtime
    }

    /// Validates `index` against `region` by the spec's rules. An index given this way was not
    /// read from a file, so `indexFile` is all zeros: no file has inode 0 on device 0, so it
    /// never equals the identity of a file at the index's path.
    public convenience init(location: DimensionLocation, region: MappedRegion, index: DimensionIndex) throws(FormatError) {
        try self.init(location: location, region: region, index: index,
                      indexFile: FileIdentity(device: 0, inode: 0, size: 0, mtimeSeconds: 0, mtimeNanoseconds: 0))
    }

    init(location: DimensionLocation, region: MappedRegion, index: DimensionIndex, indexFile: FileIdentity) throws(FormatError) {
        let regionDisplay = region.file
        let indexDisplay = location.displayPath + "/index.json"
        // The header is read with pread, not from the mapping: a writer that truncates the
        // file in place would turn a touch of the mapping into SIGBUS.
        var headerBytes = [UInt8](repeating: 0, count: RegionHeader.size)
        let got = headerBytes.withUnsafeMutableBytes { region.safeRead(offset: 0, into: $0) }
        if got < 0 { throw SystemCalls.fail(regionDisplay, "read header") }
        let header = try headerBytes.withUnsafeBytes { b in
            Result { () throws(FormatError) in
                try RegionHeader(parsing: UnsafeRawBufferPointer(rebasing: b[0..<min(got, region.size)]), file: regionDisplay)
            }
        }.get()
        guard header.totalSize == UInt64(region.size) else {
            throw FormatError(.mismatch, file: regionDisplay, field: "header.total_size",
                              "header says \(header.totalSize) bytes but the file is \(region.size) bytes")
        }
        guard header.dimensionID == location.expectedID else {
            throw FormatError(.mismatch, file: regionDisplay, field: "header.dimension_id",
                              "is \(header.dimensionID) but the directory \(location.displayPath) means \(location.expectedID)")
        }
        // Header against index: the spec's definition of one generation.
        guard index.dimensionID == header.dimensionID else {
            throw FormatError(.mismatch, file: indexDisplay, field: "dimension_id",
                              "is \(index.dimensionID) but region.mmap's header says \(header.dimensionID)")
        }
        guard index.layerCount == header.layerCount else {
            throw FormatError(.mismatch, file: indexDisplay, field: "layer_count",
                              "is \(index.layerCount) but region.mmap's header says \(header.layerCount)")
        }
        guard index.totalSize == header.totalSize else {
            throw FormatError(.mismatch, file: indexDisplay, field: "total_size",
                              "is \(index.totalSize) but region.mmap's header says \(header.totalSize)")
        }
        if let sum = index.regionChecksum, sum != header.checksum {
            throw FormatError(.mismatch, file: indexDisplay, field: "region_checksum",
                              "is \(sum.checksumString) but region.mmap's header says \(header.checksum.checksumString)")
        }
        guard index.layers.count == Int(index.layerCount) else {
            throw FormatError(.mismatch, file: indexDisplay, field: "layers",
                              "has \(index.layers.count) entries but layer_count is \(index.layerCount)")
        }
        self.layers = try Generation.validatedLayers(index.layers, totalSize: header.totalSize, file: indexDisplay)
        self.location = location
        self.header = header
        self.index = index
        self.region = region
        self.regionFile = FileIdentity(region.status)
        self.indexFile = indexFile
        self.legacy = nil
        self.dimensionName = index.dimensionName ?? location.defaultDimensionName
        let mtime = Timestamp(seconds: Int64(region.status.st_mtim.tv_sec))
        self.createdAt = index.createdAt ?? mtime
        self.updatedAt = index.updatedAt ?? mtime
    }

    /// Bounds, overflow, duplicates and overlaps; returns the layers sorted by id.
    static func validatedLayers(_ layers: [LayerEntry], totalSize: UInt64, file: String) throws(FormatError) -> [LayerEntry] {
        let headerSize = UInt64(RegionHeader.size)
        for (i, layer) in layers.enumerated() {
            let path = "layers[\(i)]"
            let (end, overflow) = layer.offset.addingReportingOverflow(layer.size)
            if overflow {
                throw FormatError(.invalidValue, file: file, field: path + ".size", layer: layer.id,
                                  "offset \(layer.offset) + size \(layer.size) overflows")
            }
            // An empty layer may sit at total_size (nothing is read from it).
            let inside = layer.size == 0
                ? layer.offset >= headerSize && layer.offset <= totalSize
                : layer.offset >= headerSize && end <= totalSize
            if !inside {
                throw FormatError(.invalidValue, file: file, field: path + ".offset", layer: layer.id,
                                  "bytes [\(layer.offset), \(end)) are outside [\(headerSize), \(totalSize))")
            }
        }
        let sorted = layers.sorted { $0.id < $1.id }
        for i in sorted.indices.dropFirst() where sorted[i].id == sorted[i - 1].id {
            throw FormatError(.invalidValue, file: file, field: "layer_id", layer: sorted[i].id, "layer_id \(sorted[i].id) appears more than once")
        }
        let byOffset = layers.filter { $0.size > 0 }.sorted { $0.offset < $1.offset }
        for i in byOffset.indices.dropFirst() where byOffset[i - 1].offset + byOffset[i - 1].size > byOffset[i].offset {
            throw FormatError(.invalidValue, file: file, field: "offset", layer: byOffset[i].id,
                              "bytes [\(byOffset[i].offset), \(byOffset[i].offset + byOffset[i].size)) overlap layer \(byOffset[i - 1].id)")
        }
        return sorted
    }

    /// The layer rules alone, for the fuzz target.
    public static func validatedLayersForFuzzing(_ layers: [LayerEntry], totalSize: UInt64) throws(FormatError) -> [LayerEntry] {
        try validatedLayers(layers, totalSize: totalSize, file: "fuzz/index.json")
    }

    /// The layer's bytes, straight out of the mapping.
    public func bytes(of layer: LayerEntry) -> UnsafeRawBufferPointer {
        region.bytes(offset: layer.offset, count: layer.size)
    }

    /// A layer's `updated_at`, with the index's as the default.
    public func updatedAt(of layer: LayerEntry) -> Timestamp { layer.updatedAt ?? updatedAt }

    /// Total of the layers' content bytes.
    public var contentBytes: UInt64 { layers.reduce(0) { $0 + $1.size } }
}
