import Glibc

/// Changes a few layers of a dimension without the whole input: the engine behind
/// `layerfs update` (and, later, writable mounts).
///
/// All changes of one update become one new generation, written by the spec's procedure
/// (hidden sibling, RENAME_EXCHANGE, file-by-file fallback: `Packer.swap`) under the
/// dimension's `WriterLock`. The changes are applied to the generation that is current once
/// the lock is held, not to one read before (spec rule 5), so two producers changing
/// different layers never lose each other's changes.
///
/// - Layers the update does not touch keep their bytes, checksum, `updated_at` and unknown
///   fields; their bytes are copied from the current region by the kernel and not hashed
///   for their own checksums (`RegionAssembly`).
/// - A change of keywords or frequency alone keeps the layer's bytes, checksum and
///   `updated_at` (the spec keeps `updated_at` while the checksum is unchanged), so a mount
///   keeps its node id and cached pages; the new values show in its extended attributes,
///   which the kernel does not cache. An update that changes only metadata links the current
///   region.mmap into the new generation instead of writing it again.
/// - A put whose bytes equal the layer's current ones keeps the layer's `updated_at` too.
/// - The index keeps `created_at` and its unknown fields; its `updated_at` is the update's.
///
/// Everything that can be refused is refused before the swap, so a refused update changes
/// nothing: bad changes in `init`, bad content when it is opened (before `init`), changes
/// that do not fit the current generation and a region over the limit before writing.
public struct DimensionUpdate: Sendable {
    /// One change, and how the user wrote it (for messages).
    public struct Change: Sendable {
        public enum Action: Sendable {
            /// Layer `id` gets these bytes: a new layer, or new bytes for an existing one.
            case put(UInt32, LayerContent)
            /// A new layer with the next free id: the highest id in use + 1.
            case putNext(LayerContent)
            case delete(UInt32)
            case keywords(UInt32, [String])
            case frequency(UInt32, Double)
        }

        public var action: Action
        /// `--put 3=new.bin`: the change as given, quoted in messages.
        public var origin: String

        public init(_ action: Action, origin: String? = nil) {
            self.action = action
            self.origin = origin ?? Change.describe(action)
        }

        /// The layer the change names; nil for `putNext`, whose id is known under the lock.
        var id: UInt32? {
            switch action {
            case .put(let id, _), .delete(let id), .keywords(let id, _), .frequency(let id, _): return id
            case .putNext: return nil
            }
        }

        static func describe(_ action: Action) -> String {
            switch action {
            case .put(let id, let content): return "put \(id)=\(content.display)"
            case .putNext(let content): return "put-next \(content.display)"
            case .delete(let id): return "delete \(id)"
            case .keywords(let id, let list): return "keywords \(id)=\(Keywords.join(list))"
            case .frequency(let id, let value): return "frequency \(id)=\(Frequency.format(value))"
            }
        }
    }

    /// A change as made, one line each for the user.
    public enum Applied: Equatable, Sendable, CustomStringConvertible {
        case name(String)
        case put(id: UInt32, size: UInt64, checksum: Digest256)
        case delete(id: UInt32)
        case keywords(id: UInt32, [String])
        case frequency(id: UInt32, Double)

        public var description: String {
            switch self {
            case .name(let name): return "name: \(name)"
            case .put(let id, let size, let checksum): return "put layer \(id) (\(size) bytes, \(checksum.checksumString))"
            case .delete(let id): return "delete layer \(id)"
            // Joined as the mount's user.keywords shows them, so the line can be compared
            // with getfattr's value.
            case .keywords(let id, let list): return "keywords layer \(id): \(list.isEmpty ? "(none)" : Keywords.join(list))"
            case .frequency(let id, let value): return "frequency layer \(id): \(Frequency.format(value))"
            }
        }
    }

    public struct Options: Sendable {
        /// The index's `updated_at`, and that of the layers given new bytes.
        public var time: Timestamp
        /// The new region's limit (MMAP_MAX_SIZE / --max-region-size). The current one is
        /// read whatever its size, so that an update can shrink a region over the limit.
        public var maxRegionSize: UInt64?
        /// Use the file-by-file procedure even where RENAME_EXCHANGE works (what happens on NFS).
        public var fileByFile = false
        /// Seconds to wait for another writer's lock; 0 tries once.
        public var wait: Double = 10
        /// Copy kept layers with pread/pwrite even where copy_file_range works, so that tests
        /// reach the fallback on any filesystem.
        var readWriteCopy = false

        public init(time: Timestamp) { self.time = time }
    }

    /// How kept layers were copied (the cost of an update).
    public struct CopyStatistics: Equatable, Sendable {
        /// Kept bytes copied with copy_file_range.
        public var copiedInKernel: UInt64 = 0
        /// Kept bytes copied with pread/pwrite.
        public var copiedByReadWrite: UInt64 = 0
        /// Kept bytes read to hash them into the region checksum.
        public var hashedKeptBytes: UInt64 = 0
        /// New bytes: read, hashed and written.
        public var newBytes: UInt64 = 0
        /// copy_file_range calls (kept layers at the same distance go in one call).
        public var kernelCopies = 0
        /// The current region.mmap was linked into the new generation: only metadata changed.
        public var regionLinked = false
    }

    public struct Result: Sendable {
        public var applied: [Applied]
        public var index: DimensionIndex
        public var header: RegionHeader
        public var method: Packer.SwapMethod
        public var statistics: CopyStatistics
    }

    public let changes: [Change]
    /// A new `dimension_name`; nil keeps the current one (the default name for a new dimension).
    public let dimensionName: String?
    /// Layers whose `updated_at` is set as given rather than kept or made the update's time (a
    /// writable mount's utimens, so that `rsync -a` restores times). Ids the result does not
    /// have are ignored.
    public let layerTimes: [UInt32: Timestamp]
    /// A new `created_at` for the index (a writable mount's `user.created_at`); nil keeps it.
    public let createdAt: Timestamp?

    /// Checks what needs no generation: ids, duplicates, keyword lengths, frequencies.
    public init(_ changes: [Change], dimensionName: String? = nil, layerTimes: [UInt32: Timestamp] = [:],
                createdAt: Timestamp? = nil) throws(UpdateError) {
        guard !changes.isEmpty || dimensionName != nil || !layerTimes.isEmpty || createdAt != nil else { throw .nothingToDo }
        // Per layer: at most one change of its bytes (put or delete), one of its keywords,
        // one of its frequency; and no metadata for a layer deleted.
        var bytes: [UInt32: String] = [:], keywords: [UInt32: String] = [:], frequencies: [UInt32: String] = [:]
        var deleted: [UInt32: String] = [:]
        for change in changes {
            if let id = change.id, id == 0 {
                throw .invalid(change: change.origin, problem: "layer ids are 1 to 4294967295; 0 is never one")
            }
            switch change.action {
            case .put(let id, _), .delete(let id):
                if let first = bytes[id] { throw .conflict(id: id, first: first, second: change.origin) }
                bytes[id] = change.origin
                if case .delete = change.action { deleted[id] = change.origin }
            case .keywords(let id, let list):
                if let first = keywords[id] { throw .conflict(id: id, first: first, second: change.origin) }
                keywords[id] = change.origin
                // Spec rule 7: readers refuse such an index, so writing it would break the dimension.
                if let problem = Keywords.limitProblem(list) { throw .invalid(change: change.origin, problem: problem) }
            case .frequency(let id, let value):
                if let first = frequencies[id] { throw .conflict(id: id, first: first, second: change.origin) }
                frequencies[id] = change.origin
                guard value.isFinite else { throw .invalid(change: change.origin, problem: "the frequency is not a finite number") }
            case .putNext:
                break
            }
        }
        for change in changes {
            switch change.action {
            case .keywords(let id, _), .frequency(let id, _):
                if let deletion = deleted[id] { throw .conflict(id: id, first: deletion, second: change.origin) }
            default: break
            }
        }
        self.changes = changes
        self.dimensionName = dimensionName
        self.layerTimes = layerTimes
        self.createdAt = createdAt
    }

    /// Writes the new generation. Takes the dimension's writer lock (waiting at most
    /// `options.wait` seconds), reads the current generation under it, applies the changes,
    /// swaps the result in, lets go. Creates the directories above the dimension that are
    /// missing, and the dimension itself when it does not exist yet.
    public func commit(into location: DimensionLocation, options: Options) throws(UpdateError) -> Result {
        let parent = Packer.parentDirectory(of: location.directory)
        do { try Packer.makeDirectories(parent) } catch { throw .format(error) }
        let lock: WriterLock
        do { lock = try WriterLock.acquire(location, wait: options.wait) } catch { throw .locked(error) }
        defer { lock.release() }
        let base = try DimensionUpdate.loadBase(location)
        let plan = try UpdatePlan(self, base: base, location: location)
        let (offsets, totalSize) = Packer.layout(plan.layers.map(\.size))
        do {
            try Packer.checkRegionSize(totalSize, of: location, maximum: options.maxRegionSize)
            return try write(plan, base: base, offsets: offsets, totalSize: totalSize, into: location, parent: parent, options: options)
        } catch {
            throw .format(error)
        }
    }

    /// What `commit` would do, computed against the current generation (read under a shared
    /// lock, held only while reading), writing nothing: the lines it would print, with the
    /// checksums of the new bytes. Refuses what `commit` would refuse.
    public func preview(of location: DimensionLocation, options: Options) throws(UpdateError) -> [Applied] {
        let base: Generation?
        do {
            let lock: WriterLock?
            do { lock = try WriterLock.acquireShared(location, wait: options.wait) } catch { throw .locked(error) }
            defer { lock?.release() }
            base = try DimensionUpdate.loadBase(location)
        }
        let plan = try UpdatePlan(self, base: base, location: location)
        var sums: [UInt32: Digest256] = [:]
        do {
            try Packer.checkRegionSize(Packer.layout(plan.layers.map(\.size)).totalSize, of: location, maximum: options.maxRegionSize)
            for layer in plan.layers {
                if case .content(let content) = layer.piece { sums[layer.id] = try content.digest() }
            }
        } catch {
            throw .format(error)
        }
        return plan.applied(sums: sums)
    }

    /// The refusals that need a generation but no bytes (an absent id, no next id, the size
    /// limit), against `base`: for a caller that must know before it creates the directories
    /// of a new dimension. `commit` checks them again under the lock.
    public func check(against base: Generation?, location: DimensionLocation, maxRegionSize: UInt64?) throws(UpdateError) {
        let plan = try UpdatePlan(self, base: base, location: location)
        do {
            try Packer.checkRegionSize(Packer.layout(plan.layers.map(\.size)).totalSize, of: location, maximum: maxRegionSize)
        } catch {
            throw .format(error)
        }
    }

    static func loadBase(_ location: DimensionLocation) throws(UpdateError) -> Generation? {
        do {
            return try Generation.load(location)
        } catch {
            throw .unreadableBase(error)
        }
    }

    /// The new generation, beside the dimension as `.NAME.update-<random hex>`, then swapped in.
    func write(_ plan: UpdatePlan, base: Generation?, offsets: [UInt64], totalSize: UInt64, into location: DimensionLocation,
               parent: String, options: Options) throws(FormatError) -> Result {
        let target = location.directory
        let baseName = String(target.split(separator: "/").last ?? "dimension")
        let sibling = parent + "/." + baseName + ".update-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        guard mkdir(sibling, 0o755) == 0 else { throw SystemCalls.fail(sibling, "mkdir") }
        var succeeded = false
        defer { if !succeeded { SystemCalls.removeTree(sibling) } }
        // The new files take the current ones' modes (and owners, when root writes), so that
        // an update changes what readers may read no more than it changes the layers.
        let previous = (directory: SystemCalls.fileStatus(target), index: SystemCalls.fileStatus(location.indexPath))
        if let st = previous.directory, SystemCalls.isDirectory(st) { DimensionUpdate.copyOwnership(st, toPath: sibling) }

        let regionPath = sibling + "/region.mmap"
        let regionDisplay = location.displayPath + "/region.mmap"
        var statistics = CopyStatistics()
        var sums: [UInt32: Digest256] = [:]
        let header: RegionHeader
        if !plan.changesBytes, let base, DimensionUpdate.link(base.region, to: regionPath) {
            header = base.header
            statistics.regionLinked = true
        } else {
            let fd = open(regionPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw SystemCalls.fail(regionDisplay, "create") }
            defer { close(fd) }
            guard ftruncate(fd, off_t(totalSize)) == 0 else { throw SystemCalls.fail(regionDisplay, "ftruncate") }
            var assembly = RegionAssembly(output: fd, display: regionDisplay, current: base?.region, kernelCopy: !options.readWriteCopy)
            defer { assembly.deallocate() }
            let pieces = zip(offsets, plan.layers).map { (offset: $0, piece: $1.piece) }
            let (regionSum, contentSums) = try assembly.write(pieces, totalSize: totalSize)
            for (layer, sum) in zip(plan.layers, contentSums) { if let sum { sums[layer.id] = sum } }
            header = RegionHeader(dimensionID: location.expectedID, layerCount: UInt32(plan.layers.count), totalSize: totalSize,
                                  checksum: regionSum)
            try SystemCalls.writeAll(fd, header.serialized, at: 0, display: regionDisplay)
            if let base { DimensionUpdate.copyOwnership(base.region.status, toDescriptor: fd) }
            guard fsync(fd) == 0 else { throw SystemCalls.fail(regionDisplay, "fsync") }
            statistics = assembly.statistics
        }

        var entries: [LayerEntry] = []
        entries.reserveCapacity(plan.layers.count)
        for (layer, offset) in zip(plan.layers, statistics.regionLinked ? plan.layers.map { $0.previous?.offset ?? 0 } : offsets) {
            let checksum: Digest256
            let updatedAt: Timestamp
            switch layer.piece {
            case .kept(let entry):
                checksum = entry.checksum
                // Written out even where the current index leaves it to the index's
                // updated_at, which changes now.
                updatedAt = base?.updatedAt(of: entry) ?? options.time
            case .content:
                checksum = sums[layer.id] ?? .zero
                if let previous = layer.previous, previous.checksum == checksum, let base {
                    updatedAt = base.updatedAt(of: previous)
                } else {
                    updatedAt = options.time
                }
            }
            entries.append(LayerEntry(id: layer.id, offset: offset, size: layer.size, checksum: checksum, frequency: layer.frequency,
                                      keywords: layer.keywords, updatedAt: layerTimes[layer.id] ?? updatedAt, extraFields: layer.extraFields))
        }
        let index = DimensionIndex(
            dimensionID: location.expectedID, dimensionName: plan.dimensionName,
            createdAt: createdAt ?? base?.createdAt ?? options.time, updatedAt: options.time,
            layerCount: UInt32(entries.count), totalSize: header.totalSize, regionChecksum: header.checksum,
            layers: entries, extraFields: base?.index.extraFields ?? [])
        let indexPath = sibling + "/index.json"
        try Packer.writeFile(indexPath, index.serialized, display: location.displayPath + "/index.json")
        if let st = previous.index, SystemCalls.isRegular(st) { DimensionUpdate.copyOwnership(st, toPath: indexPath) }
        try SystemCalls.fsyncPath(sibling, display: sibling)

        let method = try Packer.swap(sibling, into: target, parent: parent, fileByFile: options.fileByFile)
        succeeded = true
        return Result(applied: plan.applied(sums: sums), index: index, header: header, method: method, statistics: statistics)
    }

    /// Links the region file that `region` maps (by its descriptor, so it is the very file
    /// that was validated) to `path`. False where the filesystem or the kernel's hard-link
    /// protection refuses: the region is then written again.
    static func link(_ region: MappedRegion, to path: String) -> Bool {
        linkat(AT_FDCWD, "/proc/self/fd/\(region.fd)", AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0
    }

    /// Permission bits, and the owner when running as root (anyone else cannot give files
    /// away, and owns what it creates anyway). Failures are left as they are: the files
    /// are the writer's own then, as a pack's are.
    static func copyOwnership(_ st: stat, toPath path: String) {
        // chown first: it clears set-id bits that chmod then puts back.
        if geteuid() == 0 { _ = lchown(path, st.st_uid, st.st_gid) }
        _ = chmod(path, st.st_mode & 0o7777)
    }

    static func copyOwnership(_ st: stat, toDescriptor fd: Int32) {
        if geteuid() == 0 { _ = fchown(fd, st.st_uid, st.st_gid) }
        _ = fchmod(fd, st.st_mode & 0o7777)
    }
}
