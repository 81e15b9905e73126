import LayerFormat

/// The `user.*` attributes of the spec's table, answered from the served generation.
extension FileSystem {
    static let layerAttributeNames = ["user.checksum", "user.layer_id", "user.frequency", "user.keywords"]
    static let dimensionAttributeNames = ["user.dimension_id", "user.dimension_name", "user.created_at", "user.updated_at", "user.layer_count"]

    /// GETXATTR: the value's bytes (no trailing NUL or newline).
    public func extendedAttribute(_ node: NodeID, name: String) throws(FSError) -> [UInt8] {
        // ls -l asks for security.selinux and system.posix_acl_access on every file. Only the
        // user.* namespace exists here, and saying so (EOPNOTSUPP, as ext4 without ACLs does)
        // lets ls and libacl remember it per filesystem and stop asking after the first file:
        // two round trips per file fewer. Never ENOSYS, which turns off every xattr.
        guard name.hasPrefix("user.") else {
            _ = try attributes(node)
            throw .notSupported
        }
        // A layer's one value, without making the other three (each GETXATTR is a round trip
        // of its own: the kernel caches no FUSE xattrs, and getfattr asks twice, size then value).
        if node.isLayer {
            let (served, record, _) = try layer(node)
            switch name {
            case "user.checksum": return Array(record.checksum.checksumString.utf8)
            case "user.layer_id": return Array(String(record.id).utf8)
            case "user.frequency": return Array(Frequency.format(record.frequency).utf8)
            case "user.keywords": return Array(served.table.keywords(of: record))
            default:
                // Only a Jessy legacy layer has more (user.name, user.depth, ...).
                guard served.legacy != nil else { throw .noAttribute }
            }
        }
        guard let value = try attributeValues(node).first(where: { $0.0 == name })?.1 else { throw .noAttribute }
        return Array(value.utf8)
    }

    /// LISTXATTR: the names, each followed by a NUL.
    public func extendedAttributeNames(_ node: NodeID) throws(FSError) -> [UInt8] {
        var out: [UInt8] = []
        for (name, _) in try attributeValues(node) {
            out.append(contentsOf: name.utf8)
            out.append(0)
        }
        return out
    }

    func attributeValues(_ node: NodeID) throws(FSError) -> [(String, String)] {
        if node == .root || node == .protoDirectory { return [] }
        if let file = stagedFile(node) { return try stagedAttributeValues(file) }
        if isWritable {
            // user.layer_count and user.generation are what the dimension's files say: staged
            // changes that could be committed are, first, so that a reader (rsync -X comparing
            // a restore) sees the values the changes give.
            if node.isDimension, let slot = try? dimension(node), hasPendingChanges(slot) { try? commit(slot) }
            return try withPending(node, try servedAttributeValues(node))
        }
        return try servedAttributeValues(node)
    }

    /// A writable mount's metadata changes not committed yet, over the served values.
    func withPending(_ node: NodeID, _ values: [(String, String)]) throws(FSError) -> [(String, String)] {
        let pending = node.isDimension ? pendingDimensionValues(node.slot) : pendingLayerValues(node.slot, node.layerID)
        if pending.isEmpty { return values }
        return values.map { ($0.0, pending[$0.0] ?? $0.1) }
    }

    func servedAttributeValues(_ node: NodeID) throws(FSError) -> [(String, String)] {
        if node.isDimension {
            let slot = try dimension(node)
            let id = String(slot.location.expectedID)
            // One snapshot, so the error shown belongs to the generation shown.
            let (phase, served, pending) = try withLoadedState(slot) { (state) throws(FSError) in
                guard state.isCurrentDirectory(node) else { throw FSError.notFound }
                return (state.phase, state.served, state.pendingError)
            }
            switch phase {
            case .removed:
                throw .notFound
            case .loaded:
                guard let served else { throw .notFound }
                var values = [("user.dimension_id", String(served.dimensionID)), ("user.dimension_name", served.name),
                              ("user.created_at", served.createdAt.rfc3339), ("user.updated_at", served.updatedAt.rfc3339),
                              ("user.layer_count", String(served.table.records.count)),
                              ("user.generation", served.regionChecksum.checksumString)]
                if let pending { values.append(("user.error", "newest files not served: " + pending.description)) }
                if let legacy = served.legacy { values += FileSystem.legacyDimensionAttributes(legacy) }
                return values
            case .empty, .unloaded:
                return [("user.dimension_id", id), ("user.dimension_name", slot.location.defaultDimensionName), ("user.layer_count", "0")]
            case .failed(let error):
                return [("user.dimension_id", id), ("user.error", error.description)]
            }
        }
        let (served, record, i) = try layer(node)
        var values = [("user.checksum", record.checksum.checksumString), ("user.layer_id", String(record.id)),
                      ("user.frequency", Frequency.format(record.frequency)),
                      ("user.keywords", String(decoding: served.table.keywords(of: record), as: UTF8.self))]
        if let legacy = served.legacy, i < legacy.layers.count { values += FileSystem.legacyLayerAttributes(legacy.layers[i]) }
        return values
    }

    /// A Jessy legacy dimension: `user.format` (jessy-json, jessy-text; a v1 dimension has no
    /// such attribute) and, when the region was recovered from Jessy's overflowed header,
    /// `user.warning`, beside `user.error` which says what is not served.
    static func legacyDimensionAttributes(_ legacy: LegacyDetails) -> [(String, String)] {
        var values = [("user.format", legacy.layout.formatName)]
        if !legacy.warnings.isEmpty { values.append(("user.warning", legacy.warnings.map(\.description).joined(separator: "; "))) }
        return values
    }

    /// Jessy's layer fields v1 has no place for; only those the layout has.
    static func legacyLayerAttributes(_ a: LegacyLayerAttributes) -> [(String, String)] {
        var values: [(String, String)] = []
        if let name = a.name { values.append(("user.name", name)) }
        if let depth = a.depth { values.append(("user.depth", depth)) }
        if let parent = a.parent { values.append(("user.parent", parent)) }
        if let children = a.children { values.append(("user.children", children)) }
        return values
    }
}
