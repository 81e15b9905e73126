/// What the kernel holds in one dimension: every generation a layer node id may still resolve
/// to, with, per record, the lookups the kernel was handed and has not forgotten.
///
/// A value type kept inside the slot's `State`, so that no count can change without the slot's
/// lock (the compiler refuses it: the state is only reachable through `Mutex.withLock`).
///
/// Invariants (checked by `checkInvariants`, which the model-based tests call after each step):
/// - `generations` is oldest first; when the dimension is served, the served one is last.
/// - A node id resolves to at most one content: records of one layer id in different held
///   generations either have the same version (the same content, carried over unchanged) or
///   versions with different tags.
/// - The count for a node id lives in the newest held generation that has it; every count is
///   made there (`handOut` works only on the served generation, and `install` moves the
///   counts of unchanged records forward), so FORGET finds it by the same rule (`resolve`).
/// - `outstanding` is the sum of `lookups`: releasing is O(1), never a scan of the table.
/// - A generation other than the served one stays only while its `outstanding` is above 0.
struct HeldGenerations {
    struct Held {
        let generation: ServedGeneration
        var lookups: [UInt32]
        var outstanding: UInt64 = 0

        init(_ generation: ServedGeneration) {
            self.generation = generation
            lookups = [UInt32](repeating: 0, count: generation.table.records.count)
        }
    }

    enum InstallResult: Equatable {
        case installed
        /// Some changed layer has no free node id tag: every tag is held by older generations
        /// the kernel has not forgotten. Only reachable with narrow test tags; retried later.
        case noFreeTag(layer: UInt32)
    }

    private(set) var generations: [Held] = []
    /// Whether the last generation is the one served.
    private(set) var serving = false
    /// The next version to give a new or changed layer: versions only grow, so (layer, version)
    /// never names two contents in a slot's life.
    private(set) var nextVersion: UInt64
    let tagging: NodeTagging

    init(tagging: NodeTagging, firstVersion: UInt64 = 1) {
        self.tagging = tagging
        nextVersion = firstVersion
    }

    var served: ServedGeneration? { serving ? generations.last?.generation : nil }
    var retiredCount: Int { generations.count - (serving ? 1 : 0) }
    var outstanding: UInt64 { generations.reduce(0) { $0 + $1.outstanding } }

    func node(slot: Int, _ record: LayerRecord) -> NodeID {
        .layer(slot: slot, tag: tagging.tag(record.version), id: record.id)
    }

    // MARK: - Counting

    /// Counts one lookup of record `i` of the served generation (LOOKUP, a READDIRPLUS entry).
    mutating func handOut(_ i: Int) {
        precondition(serving, "hand-outs come from the served generation")
        let last = generations.count - 1
        generations[last].lookups[i] &+= 1
        generations[last].outstanding &+= 1
    }

    /// The held generation and record a layer node id names: the newest that has it.
    func resolve(_ node: NodeID) -> (generation: Int, record: Int)? {
        for g in generations.indices.reversed() {
            let table = generations[g].generation.table
            if let i = table.position(of: node.layerID), tagging.tag(table.records[i].version) == node.tag {
                return (g, i)
            }
        }
        return nil
    }

    func lookups(of node: NodeID) -> UInt32? {
        resolve(node).map { generations[$0.generation].lookups[$0.record] }
    }

    /// FORGET of `count` lookups. Returns the lookups the node had, for the caller to report a
    /// kernel asking for more than it was given (which exact counting makes a bug).
    @discardableResult
    mutating func forget(_ node: NodeID, count: UInt64) -> UInt64? {
        guard let (g, i) = resolve(node) else { return nil }
        let had = UInt64(generations[g].lookups[i])
        let dropped = min(had, count)
        generations[g].lookups[i] = UInt32(had - dropped)
        generations[g].outstanding -= dropped
        if generations[g].outstanding == 0 && !(serving && g == generations.count - 1) {
            // The kernel holds nothing in this generation any more: its mapping can go.
            generations.remove(at: g)
        }
        return had
    }

    // MARK: - Generations coming and going

    /// Gives each record of `table` its version: a layer whose content is unchanged since the
    /// served generation keeps its version (so its node id, and the kernel keeps its pages); a
    /// new or changed one gets a fresh version whose tag no held record of the same layer has.
    func assignVersions(_ table: inout LayerTable) -> (InstallResult, next: UInt64) {
        let previous = served?.table
        var next = nextVersion
        let first = nextVersion
        for i in table.records.indices {
            let id = table.records[i].id
            if let previous, let j = previous.position(of: id), table.sameContent(i, as: previous.records[j]) {
                table.setVersion(i, previous.records[j].version)
                continue
            }
            // Tags of this layer that a held generation still resolves: at most one per held
            // generation, so a free one is near.
            var taken: Set<UInt16> = []
            for held in generations {
                if let j = held.generation.table.position(of: id) { taken.insert(tagging.tag(held.generation.table.records[j].version)) }
            }
            guard UInt64(taken.count) < tagging.tagCount else { return (.noFreeTag(layer: id), nextVersion) }
            var version = first
            while taken.contains(tagging.tag(version)) { version += 1 }
            table.setVersion(i, version)
            next = max(next, version + 1)
        }
        return (.installed, max(next, first + 1))
    }

    /// Serves `generation` (its versions assigned by `assignVersions` on this state, under the
    /// same lock). The counts of unchanged records move to it; the generation it replaces
    /// stays only while the kernel holds something in it.
    mutating func install(_ generation: ServedGeneration, nextVersion: UInt64) {
        self.nextVersion = nextVersion
        var held = Held(generation)
        if serving {
            let last = generations.count - 1
            let old = generations[last].generation.table.records
            let new = generation.table.records
            // Both sorted by id: one merge walk.
            var j = 0
            for i in new.indices {
                while j < old.count && old[j].id < new[i].id { j += 1 }
                guard j < old.count, old[j].id == new[i].id, old[j].version == new[i].version else { continue }
                let n = generations[last].lookups[j]
                if n > 0 {
                    held.lookups[i] = n
                    held.outstanding += UInt64(n)
                    generations[last].lookups[j] = 0
                    generations[last].outstanding -= UInt64(n)
                }
            }
            if generations[last].outstanding == 0 { generations.removeLast() }
        }
        generations.append(held)
        serving = true
    }

    /// Stops serving (the dimension became empty, or went away): the served generation stays
    /// only while the kernel holds something in it.
    mutating func retire() {
        guard serving else { return }
        serving = false
        if let last = generations.last, last.outstanding == 0 { generations.removeLast() }
    }

    // MARK: - Checking

    /// The invariants above, as a list of violations (empty when all hold). O(records × held).
    func checkInvariants() -> [String] {
        var problems: [String] = []
        for (g, held) in generations.enumerated() {
            let sum = held.lookups.reduce(UInt64(0)) { $0 + UInt64($1) }
            if sum != held.outstanding { problems.append("generation \(g): outstanding \(held.outstanding) but lookups sum to \(sum)") }
            let isServed = serving && g == generations.count - 1
            if !isServed && held.outstanding == 0 { problems.append("generation \(g) is retired with nothing held") }
            for (i, record) in held.generation.table.records.enumerated() {
                let node = node(slot: 1, record)
                guard let (rg, ri) = resolve(node) else { problems.append("record \(record.id) of generation \(g) does not resolve"); continue }
                let found = generations[rg].generation.table.records[ri]
                if found.version != record.version {
                    problems.append("layer \(record.id): versions \(record.version) (generation \(g)) and \(found.version) (generation \(rg)) share a tag")
                }
                if rg != g && held.lookups[i] != 0 {
                    problems.append("layer \(record.id): \(held.lookups[i]) lookups left in generation \(g), but its node resolves to generation \(rg)")
                }
                if record.version >= nextVersion { problems.append("layer \(record.id): version \(record.version) not below next \(nextVersion)") }
            }
        }
        return problems
    }
}
