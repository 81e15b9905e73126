/// An update's changes applied to the generation current under the lock (spec rule 5): the
/// new dimension's layers, in ascending id order, each either kept from that generation or
/// given new bytes. Pure: it reads and writes nothing, so that the commit and the dry run
/// resolve the same changes the same way.
struct UpdatePlan {
    struct Layer {
        var id: UInt32
        var piece: RegionAssembly.Piece
        var size: UInt64
        var frequency: Double
        var keywords: [String]
        var extraFields: [(key: String, json: String)]
        /// The entry this layer replaces or keeps, if the current generation has the id.
        var previous: LayerEntry?
    }

    /// Ascending ids.
    var layers: [Layer]
    /// What the user will be told, in order: the name, then by id put or delete, keywords,
    /// frequency. Puts carry a zero checksum until their bytes are hashed (`applied(sums:)`).
    var changes: [DimensionUpdate.Applied]
    /// False when only metadata changes: the layers' bytes and places stay as they are.
    var changesBytes: Bool
    var dimensionName: String

    init(_ update: DimensionUpdate, base: Generation?, location: DimensionLocation) throws(UpdateError) {
        let baseLayers = base?.layers ?? []
        var byID: [UInt32: Layer] = [:]
        byID.reserveCapacity(baseLayers.count + update.changes.count)
        for entry in baseLayers {
            byID[entry.id] = Layer(id: entry.id, piece: .kept(entry), size: entry.size, frequency: entry.frequency,
                                   keywords: entry.keywords, extraFields: entry.extraFields, previous: entry)
        }
        let range = baseLayers.isEmpty ? nil
            : UpdateError.LayerRange(count: baseLayers.count, first: baseLayers[0].id, last: baseLayers[baseLayers.count - 1].id)
        func absent(_ id: UInt32, _ change: DimensionUpdate.Change) -> UpdateError {
            .absent(id: id, change: change.origin, dimension: location.displayPath, layers: range)
        }

        // --put-next counts from the highest id in use, the current generation's or one this
        // call puts; a deleted id is not handed out again in the same call.
        var highest = baseLayers.last?.id ?? 0
        for change in update.changes { if case .put(let id, _) = change.action { highest = max(highest, id) } }

        var changesBytes = false
        var puts: [UInt32: LayerContent] = [:]
        var deletes: Set<UInt32> = []
        var keywords: [UInt32: [String]] = [:]
        var frequencies: [UInt32: Double] = [:]
        for change in update.changes {
            switch change.action {
            case .put(let id, let content):
                puts[id] = content
            case .putNext(let content):
                guard highest < UInt32.max else { throw .idsExhausted(change: change.origin, dimension: location.displayPath) }
                highest += 1
                puts[highest] = content
            case .delete(let id):
                guard byID[id] != nil else { throw absent(id, change) }
                deletes.insert(id)
            case .keywords(let id, let list):
                keywords[id] = list
            case .frequency(let id, let value):
                frequencies[id] = value
            }
        }
        // Checked once every put is known: `--put 9=x --keywords 9=a` names a layer this
        // call creates.
        for change in update.changes {
            switch change.action {
            case .keywords(let id, _), .frequency(let id, _):
                guard byID[id] != nil || puts[id] != nil else { throw absent(id, change) }
            default: break
            }
        }

        for id in deletes {
            byID[id] = nil
            changesBytes = true
        }
        for (id, content) in puts {
            // A replaced layer keeps its metadata and unknown fields unless the call changes
            // them; a new one starts from the format's defaults.
            let previous = byID[id]?.previous
            byID[id] = Layer(id: id, piece: .content(content), size: content.size, frequency: previous?.frequency ?? 1.0,
                             keywords: previous?.keywords ?? [], extraFields: previous?.extraFields ?? [], previous: previous)
            changesBytes = true
        }
        for (id, list) in keywords { byID[id]?.keywords = list }
        for (id, value) in frequencies { byID[id]?.frequency = value }

        layers = byID.values.sorted { $0.id < $1.id }
        self.changesBytes = changesBytes || base == nil
        dimensionName = update.dimensionName ?? base?.dimensionName ?? location.defaultDimensionName

        var told: [DimensionUpdate.Applied] = []
        if let name = update.dimensionName { told.append(.name(name)) }
        let touched = Set(puts.keys).union(deletes).union(keywords.keys).union(frequencies.keys).sorted()
        for id in touched {
            if let content = puts[id] { told.append(.put(id: id, size: content.size, checksum: .zero)) }
            if deletes.contains(id) { told.append(.delete(id: id)) }
            if let list = keywords[id] { told.append(.keywords(id: id, list)) }
            if let value = frequencies[id] { told.append(.frequency(id: id, value)) }
        }
        changes = told
    }

    /// `changes` with each put's checksum filled in.
    func applied(sums: [UInt32: Digest256]) -> [DimensionUpdate.Applied] {
        changes.map { change in
            guard case .put(let id, let size, _) = change else { return change }
            return .put(id: id, size: size, checksum: sums[id] ?? .zero)
        }
    }
}
