import Crypto
import Glibc
import CLinux

/// Writes a dimension by the spec's procedure: build the complete new directory as a hidden
/// sibling, fsync it, swap it in with one RENAME_EXCHANGE (or rename when the target is new),
/// fsync the parent, remove the old one. Where the filesystem refuses RENAME_EXCHANGE, it
/// replaces the two files inside the target instead, region first: `region_checksum` lets
/// readers tell that half-way state from a generation.
public enum Packer {
    public struct Options: Sendable {
        /// Overrides the input directory's `user.dimension_name` and the existing name.
        public var dimensionName: String?
        /// The index's `updated_at` (and `created_at` of a new dimension).
        public var time: Timestamp
        public var maxRegionSize: UInt64?
        /// Use the file-by-file procedure even where RENAME_EXCHANGE works (what happens on NFS).
        public var fileByFile = false
        /// Called with (bytes written, bytes in all) as layers are copied.
        public var progress: (@Sendable (UInt64, UInt64) -> Void)?

        public init(time: Timestamp) { self.time = time }
    }

    public enum SwapMethod: String, Sendable { case created, exchanged, fileByFile = "file by file" }

    /// What the target holds before a pack: the generation the new one builds on (its
    /// created_at, unknown fields, unchanged layers' updated_at), and how many layers readers
    /// stand to lose.
    public struct Existing: Sendable {
        public var generation: Generation?
        /// The generation's layers; for a pair that is not one generation (an update caught
        /// half way, a damaged region) the index's layer_count, when the index still parses:
        /// those are layers a mount may be serving from the generation it holds. 0 when
        /// nothing readable is there.
        public var layerCount: Int

        public init(generation: Generation?, layerCount: Int) {
            self.generation = generation
            self.layerCount = layerCount
        }

        public static func load(_ location: DimensionLocation) -> Existing {
            do {
                let generation = try Generation.load(location)
                return Existing(generation: generation, layerCount: generation?.layers.count ?? 0)
            } catch {
                // A broken or half-written dimension is what a pack often replaces: its errors
                // do not stop the pack.
                let index = try? DimensionIndex(parsing: SystemCalls.readFile(location.indexPath, display: location.indexPath).bytes,
                                                file: location.indexPath)
                return Existing(generation: nil, layerCount: index.map { Int($0.layerCount) } ?? 0)
            }
        }

        /// Whether a pack of `count` layers may replace this without being forced: not when
        /// it would empty a dimension that has layers, nor leave fewer than half of them.
        /// Such a pack is more often a wrong input directory than an intended cut.
        public func allowsReplacement(byLayers count: Int) -> Bool {
            layerCount == 0 || (count > 0 && count >= (layerCount + 1) / 2)
        }
    }

    public struct Result: Sendable {
        public var index: DimensionIndex
        public var header: RegionHeader
        public var method: SwapMethod
    }

    static let alignment: UInt64 = 4096

    /// Saturates rather than traps: sizes come from the input, and a region that large is
    /// refused by the size limit or by ftruncate, with a message.
    static func alignUp(_ v: UInt64) -> UInt64 {
        let (sum, overflow) = v.addingReportingOverflow(alignment - 1)
        return overflow ? UInt64.max / alignment * alignment : sum / alignment * alignment
    }

    /// The writers' layout for layers of these sizes, in ascending id order: each on a
    /// 4096-byte boundary, the first at 4096; the file padded to a multiple of 4096 and at
    /// least 4096 bytes. A function of the sizes alone, so equal input gives equal bytes.
    public static func layout(_ sizes: [UInt64]) -> (offsets: [UInt64], totalSize: UInt64) {
        var offsets: [UInt64] = []
        offsets.reserveCapacity(sizes.count)
        var cursor = alignment
        for size in sizes {
            offsets.append(cursor)
            let (end, overflow) = cursor.addingReportingOverflow(size)
            cursor = alignUp(overflow ? UInt64.max : end)
        }
        return (offsets, max(alignment, cursor))
    }

    /// MMAP_MAX_SIZE / --max-region-size: refused before anything is written (or locked, or
    /// created), since readers would refuse to map the result.
    public static func checkRegionSize(_ totalSize: UInt64, of location: DimensionLocation, maximum: UInt64?) throws(FormatError) {
        if let maximum, totalSize > maximum {
            throw FormatError(.tooLarge, file: location.displayPath + "/region.mmap",
                              "region would be \(totalSize) bytes, over the maximum of \(maximum) (MMAP_MAX_SIZE / --max-region-size)")
        }
    }

    /// `existing` is what `Existing.load(location)` returns, for a caller that has looked
    /// already (to refuse a shrinking pack); loaded here when not given.
    ///
    /// Spec rule 4: a caller other than a test holds the dimension's `WriterLock` from before
    /// it loads `existing` until this returns. The lock is the caller's because the caller's
    /// own checks (pack's refusal to shrink a dimension) must see the generation that is
    /// replaced, and so must run under it too.
    public static func pack(_ sources: [PackLayerSource], attributes: PackDirectoryAttributes = PackDirectoryAttributes(),
                            into location: DimensionLocation, existing before: Existing? = nil, options: Options) throws(FormatError) -> Result {
        let target = location.directory
        let existing = (before ?? Existing.load(location)).generation
        let existingByID = Dictionary((existing?.layers ?? []).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })

        // Layout: ascending ids, each layer on a 4096-byte boundary, the first at 4096.
        let sorted = sources.sorted { $0.id < $1.id }
        for i in sorted.indices.dropFirst() where sorted[i].id == sorted[i - 1].id {
            throw FormatError(.invalidValue, file: sorted[i].displayPath, field: "layer_id", layer: sorted[i].id, "two inputs have layer id \(sorted[i].id)")
        }
        guard sorted.count <= Int(UInt32.max) else { throw FormatError(.tooLarge, file: target, "too many layers") }
        // Readers refuse an index breaking rule 7, so writing one would break the dimension.
        for source in sorted {
            if let problem = Keywords.limitProblem(source.keywords) {
                throw FormatError(.invalidValue, file: source.displayPath, field: "keywords", layer: source.id, problem)
            }
        }
        let (offsets, totalSize) = layout(sorted.map(\.size))
        try checkRegionSize(totalSize, of: location, maximum: options.maxRegionSize)

        let parent = parentDirectory(of: target)
        try makeDirectories(parent)
        let baseName = String(target.split(separator: "/").last ?? "dimension")
        let sibling = parent + "/." + baseName + ".pack-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        guard mkdir(sibling, 0o755) == 0 else { throw SystemCalls.fail(sibling, "mkdir") }
        var succeeded = false
        defer { if !succeeded { SystemCalls.removeTree(sibling) } }

        // Region: copy each layer, hashing it and the region as we go.
        let regionPath = sibling + "/region.mmap"
        let regionDisplay = location.displayPath + "/region.mmap"
        let fd = open(regionPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SystemCalls.fail(regionPath, "create") }
        defer { close(fd) }
        guard ftruncate(fd, off_t(totalSize)) == 0 else { throw SystemCalls.fail(regionDisplay, "ftruncate") }
        var regionHasher = SHA256()
        var entries: [LayerEntry] = []
        let chunk = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 4096)
        defer { buffer.deallocate() }
        let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(alignment), alignment: 4096)
        zeros.initializeMemory(as: UInt8.self, repeating: 0)
        defer { zeros.deallocate() }
        var hashed = UInt64(RegionHeader.size)
        func hashZeros(upTo end: UInt64) {
            while hashed < end {
                let n = Int(min(UInt64(zeros.count), end - hashed))
                regionHasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: zeros[0..<n]))
                hashed += UInt64(n)
            }
        }
        let contentTotal = sorted.reduce(0) { $0 + $1.size }
        var copied: UInt64 = 0
        for (i, source) in sorted.enumerated() {
            let offset = offsets[i]
            hashZeros(upTo: offset)
            // Not following a link here: the scan resolved and checked every link it was
            // allowed to follow, and hands over the target; a link that appears since then
            // (the file swapped for one) could lead anywhere.
            let input = try SystemCalls.openRegular(source.path, display: source.displayPath, followSymlinks: false)
            defer { close(input.fd) }
            var layerHasher = SHA256()
            var done: UInt64 = 0
            while true {
                let n = SystemCalls.retrying { read(input.fd, buffer.baseAddress, buffer.count) }
                if n < 0 { throw SystemCalls.fail(source.displayPath, "read") }
                if n == 0 { break }
                if done + UInt64(n) > source.size { break }
                let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
                layerHasher.update(bufferPointer: bytes)
                regionHasher.update(bufferPointer: bytes)
                try SystemCalls.writeAll(fd, bytes, at: offset + done, display: regionDisplay)
                done += UInt64(n)
                copied += UInt64(n)
                options.progress?(copied, contentTotal)
            }
            guard done == source.size else {
                throw FormatError(.invalidValue, file: source.displayPath, field: "size", layer: source.id,
                                  "file changed while being packed (expected \(source.size) bytes, read \(done))")
            }
            hashed += done
            let checksum = Digest256(layerHasher.finalize())
            if let claimed = source.claimedChecksum, claimed != checksum {
                throw FormatError(.checksumMismatch, file: source.displayPath, field: "user.checksum", layer: source.id,
                                  "attribute says \(claimed.checksumString) but the bytes hash to \(checksum.checksumString)")
            }
            var updatedAt = source.updatedAt
            if let old = existingByID[source.id], old.checksum == checksum, let existing {
                updatedAt = existing.updatedAt(of: old)
            }
            entries.append(LayerEntry(id: source.id, offset: offset, size: source.size, checksum: checksum,
                                      frequency: source.frequency, keywords: source.keywords, updatedAt: updatedAt,
                                      extraFields: existingByID[source.id]?.extraFields ?? []))
        }
        hashZeros(upTo: totalSize)
        let header = RegionHeader(dimensionID: location.expectedID, layerCount: UInt32(sorted.count), totalSize: totalSize,
                                  checksum: Digest256(regionHasher.finalize()))
        try SystemCalls.writeAll(fd, header.serialized, at: 0, display: regionDisplay)
        guard fsync(fd) == 0 else { throw SystemCalls.fail(regionDisplay, "fsync") }

        let index = DimensionIndex(
            dimensionID: location.expectedID,
            dimensionName: options.dimensionName ?? attributes.dimensionName ?? existing?.dimensionName ?? location.defaultDimensionName,
            createdAt: existing?.createdAt ?? attributes.createdAt ?? options.time,
            updatedAt: options.time,
            layerCount: UInt32(sorted.count), totalSize: totalSize, regionChecksum: header.checksum,
            layers: entries, extraFields: existing?.index.extraFields ?? [])
        try writeFile(sibling + "/index.json", index.serialized, display: location.displayPath + "/index.json")
        try SystemCalls.fsyncPath(sibling, display: sibling)

        let method = try swap(sibling, into: target, parent: parent, fileByFile: options.fileByFile)
        succeeded = true
        return Result(index: index, header: header, method: method)
    }

    static func writeFile(_ path: String, _ bytes: [UInt8], display: String) throws(FormatError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SystemCalls.fail(display, "create") }
        defer { close(fd) }
        try SystemCalls.writeAll(fd, bytes, at: 0, display: display)
        guard fsync(fd) == 0 else { throw SystemCalls.fail(display, "fsync") }
    }

    /// Puts the finished sibling in place. Returns how.
    static func swap(_ sibling: String, into target: String, parent: String, fileByFile: Bool) throws(FormatError) -> SwapMethod {
        guard let st = SystemCalls.fileStatus(target) else {
            guard rename(sibling, target) == 0 else { throw SystemCalls.fail(target, "rename into place") }
            try SystemCalls.fsyncPath(parent, display: parent)
            return .created
        }
        guard SystemCalls.isDirectory(st) else {
            throw FormatError(.unusableFile, file: target, "output exists and is \(SystemCalls.describeType(st)), not a directory")
        }
        if !fileByFile {
            if layerfs_rename_exchange(AT_FDCWD, sibling, AT_FDCWD, target) == 0 {
                try SystemCalls.fsyncPath(parent, display: parent)
                SystemCalls.removeTree(sibling) // now holds the old generation
                return .exchanged
            }
            let code = errno
            guard code == EINVAL || code == ENOSYS || code == EOPNOTSUPP else {
                throw SystemCalls.fail(target, "renameat2(RENAME_EXCHANGE)", code)
            }
        }
        // The fallback: region first, then index. A reader in between sees a region whose
        // checksum the old index does not name, so it keeps the old generation.
        for name in ["region.mmap", "index.json"] {
            guard rename(sibling + "/" + name, target + "/" + name) == 0 else { throw SystemCalls.fail(target + "/" + name, "rename over") }
        }
        try SystemCalls.fsyncPath(target, display: target)
        SystemCalls.removeTree(sibling)
        return .fileByFile
    }

    static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// mkdir -p.
    static func makeDirectories(_ path: String) throws(FormatError) {
        if let st = SystemCalls.followStatus(path) {
            guard SystemCalls.isDirectory(st) else { throw FormatError(.unusableFile, file: path, "exists and is not a directory") }
            return
        }
        let parent = parentDirectory(of: path)
        if parent != path { try makeDirectories(parent) }
        if mkdir(path, 0o755) != 0 && errno != EEXIST { throw SystemCalls.fail(path, "mkdir") }
    }
}
