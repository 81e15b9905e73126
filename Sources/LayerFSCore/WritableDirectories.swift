import Glibc
import LayerFormat

/// MKDIR and RMDIR on a writable mount: a dimension is a directory of the volume, so making
/// one is making its directory (`DNN` in the root, `NAME` in proto/); it is served empty until
/// its first commit. Removing one needs it empty, as rmdir(2) does.
extension FileSystem {
    /// MKDIR: a new, empty dimension.
    public func makeDimension(parent: NodeID, name: String) throws(FSError) -> Entry {
        try requireWritable()
        let path: String
        let container: String
        if parent == .root {
            if name == "proto" { throw .exists }
            guard let id = DimensionLocation.consciousnessID(fromDirectoryName: name), DimensionLocation.directoryName(for: id) == name else {
                logger.warning("mkdir \(name): refused (EINVAL): the root holds dimensions named DNN (D01, D15, D100) and proto/")
                throw .invalid
            }
            container = volume.consciousnessDirectory
            path = container + "/" + name
        } else if parent == .protoDirectory {
            guard DimensionLocation.isValidProtoName(name) else {
                logger.warning("mkdir proto/\(name): refused (EINVAL): not a proto dimension name")
                throw .invalid
            }
            container = volume.protoDirectory
            path = container + "/" + name
        } else {
            _ = try attributes(parent)
            // Dimensions hold layers, not directories.
            throw .permission
        }
        if access(container, F_OK) != 0 && mkdir(container, 0o755) != 0 { throw FSError(errno: errno) }
        if mkdir(path, 0o755) != 0 { throw errno == EEXIST ? .exists : FSError(errno: errno) }
        deliverLater(refreshDimensionList())
        return try lookup(parent: parent, name: name)
    }

    /// RMDIR: an empty dimension goes (its empty generation's files with it, under the lock).
    public func removeDimension(parent: NodeID, name: String) throws(FSError) {
        try requireWritable()
        guard parent == .root || parent == .protoDirectory else {
            _ = try attributes(parent)
            throw .notDirectory
        }
        if parent == .root && name == "proto" { throw .permission }
        guard let slot = directory.withLock({ $0.slot(named: name, proto: parent == .protoDirectory) }) else { throw .notFound }
        let entry = try dimensionEntry(slot)
        var empty = true
        try readDirectory(entry.node, from: 2, plus: false) { _, _ in
            empty = false
            return false
        }
        if !empty { throw .notEmpty }
        let lock: WriterLock
        do { lock = try WriterLock.acquire(slot.location, wait: configuration.commitLockWait) } catch { throw .busy }
        defer { lock.release() }
        // Only the files of an empty generation may be there; anything else makes rmdir fail.
        if let generation = try? Generation.load(slot.location), !generation.layers.isEmpty { throw .notEmpty }
        _ = Glibc.unlink(slot.location.indexPath)
        _ = Glibc.unlink(slot.location.regionPath)
        if rmdir(slot.location.directory) != 0 { throw errno == ENOTEMPTY || errno == EEXIST ? .notEmpty : FSError(errno: errno) }
        _ = Glibc.unlink(WriterLock.path(for: slot.location))
        deliverLater(refreshDimensionList())
    }

    /// Invalidations found on a request thread go to the kernel from another one: the request
    /// may hold the very directory lock a notification waits for.
    func deliverLater(_ invalidations: [Invalidation]) {
        guard !invalidations.isEmpty, let deliver = staging.deliver.withLock({ $0 }) else { return }
        staging.notifyQueue.async { deliver(invalidations) }
    }
}
