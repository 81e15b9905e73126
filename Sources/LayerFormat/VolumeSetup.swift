import Glibc

/// What `layerfs init` does: the volume skeleton, and optionally the sample volume. Never
/// touches existing data: files that exist are left alone, and the sample is written only into
/// dimensions that are empty.
public enum VolumeSetup {
    public struct Result: Sendable {
        public var created: [String] = []
        public var sampled: [String] = []
        public var skipped: [String] = []
    }

    public static func initialize(base: String, sample: Bool, time: Timestamp) throws(FormatError) -> Result {
        var result = Result()
        func directory(_ path: String) throws(FormatError) {
            if SystemCalls.followStatus(path) == nil { result.created.append(path) }
            try Packer.makeDirectories(path)
        }
        try directory(base)
        for id in 1...14 { try directory(base + "/consciousness/" + DimensionLocation.directoryName(for: UInt32(id))) }
        try directory(base + "/proto")
        try directory(base + "/temp")
        for (name, text) in [("README.md", readme), (".gitignore", gitignore)] where SystemCalls.fileStatus(base + "/" + name) == nil {
            try Packer.writeFile(base + "/" + name, Array(text.utf8), display: base + "/" + name)
            result.created.append(base + "/" + name)
        }
        guard sample else { return result }
        let volume = Volume(base: base)
        for location in volume.dimensions() {
            guard case .consciousness(let id) = location.kind, (1...14).contains(id) else { continue }
            // The sample is a writer like any other (spec rule 4). A dimension whose lock is
            // held is being written, so it is not empty: skipped without waiting.
            let lock: WriterLock
            do {
                lock = try WriterLock.acquire(location, wait: 0)
            } catch {
                if case .unusable(let problem) = error { throw problem }
                result.skipped.append(location.displayPath)
                continue
            }
            defer { lock.release() }
            let hasData = SystemCalls.fileStatus(location.regionPath) != nil || SystemCalls.fileStatus(location.indexPath) != nil
            if hasData { result.skipped.append(location.displayPath); continue }
            try writeSample(id: id, location: location, scratch: base + "/temp", time: time)
            result.sampled.append(location.displayPath)
        }
        return result
    }

    /// Three human-readable layers per dimension, deterministic in every byte.
    static func writeSample(id: UInt32, location: DimensionLocation, scratch: String, time: Timestamp) throws(FormatError) {
        let name = DimensionLocation.canonicalNames[Int(id) - 1]
        let topics = SampleText.topics[Int(id) - 1]
        let dir = scratch + "/.sample-" + location.name + "-" + String(getpid())
        try Packer.makeDirectories(dir)
        defer { SystemCalls.removeTree(dir) }
        var sources: [PackLayerSource] = []
        for (i, topic) in topics.enumerated() {
            let layerID = UInt32(i + 1)
            let frequency = [1.5, 0.75, 0.25][i]
            let text = SampleText.layer(dimension: name, id: id, layer: layerID, topic: topic, frequency: frequency)
            let path = dir + "/" + PackInput.fileName(forLayer: layerID)
            try Packer.writeFile(path, Array(text.utf8), display: path)
            sources.append(PackLayerSource(id: layerID, path: path, size: UInt64(text.utf8.count), frequency: frequency,
                                           keywords: topic.keywords, updatedAt: time))
        }
        var options = Packer.Options(time: time)
        options.dimensionName = name
        _ = try Packer.pack(sources, into: location, options: options)
    }

    static let readme = """
    # MMAP volume

    Written by `layerfs init`. One directory per dimension under `consciousness/` (D01-D14,
    more allowed) and per proto-dimension under `proto/`, each holding `region.mmap` (the
    packed layer bytes) and `index.json` (where each layer is, its checksum and metadata).
    `temp/` is scratch space.

    The commands below are run here, in this directory (`.` is this volume; elsewhere, give
    its path instead):

    - Build a dimension from a directory of files: `layerfs pack --dimension 5 DIR consciousness/D05`
    - Check every checksum: `layerfs verify .`
    - Summarise: `layerfs info .`
    - See every layer as a plain file: `layerfs mount . /mnt/layers`

    Never edit region.mmap or index.json in place: `layerfs pack` replaces a dimension
    atomically, so that readers never see half an update.

    """

    static let gitignore = """
    # Volume data stays out of git.
    consciousness/*/region.mmap
    consciousness/*/index.json
    proto/*
    temp/*
    .*.pack-*
    .*.update-*
    .*.lock

    """
}
