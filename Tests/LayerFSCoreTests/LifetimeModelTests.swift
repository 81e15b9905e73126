import Glibc
import Logging
import Synchronization
import XCTest
@testable import LayerFormat
@testable import LayerFSCore

/// Model-based tests of generation lifetimes: random, seeded sequences of what the kernel does
/// (LOOKUP, READDIRPLUS with full and short buffers, FORGET, READ and GETATTR of every node it
/// holds) and of what producers do (new generations that keep, change, add and remove layers,
/// dimensions removed and written again), run against the core and against a model of the
/// kernel: its nlookup per node id. After every step:
/// - every node id the model holds reads the bytes and shows the attributes it was handed out with;
/// - the core's count for every held node equals the model's, and the core's invariants hold;
/// - no (node id, generation) pair was ever handed out for two contents, and no node id the
///   model holds was handed out again for another content;
/// - a lookup answers the content of the generation the core serves (the last one written
///   before the last refresh), where the node id tag is wide enough never to defer one.
/// At the end the model forgets everything: then no retired generation may be left.
///
/// On a failure the seed and the shortest failing sequence found are printed.
/// `LAYERFS_MODEL_SEQUENCES` (default 10 000) and `LAYERFS_MODEL_FIRST_SEED` choose the run;
/// `make model` runs a long one.
final class LifetimeModelTests: XCTestCase {
    func testRandomSequencesAgainstTheKernelModel() throws {
        let environment = ProcessInfo.processInfo.environment
        let count = environment["LAYERFS_MODEL_SEQUENCES"].flatMap { Int($0) } ?? 10_000
        let firstSeed = environment["LAYERFS_MODEL_FIRST_SEED"].flatMap { UInt64($0) } ?? 1
        let root = try ModelVolume.scratchRoot()
        defer { SystemCalls.removeTree(root) }
        var steps = 0
        for seed in firstSeed..<firstSeed + UInt64(count) {
            let sequence = ModelSequence.generate(seed: seed)
            steps += sequence.steps.count
            if let failure = ModelRunner.run(sequence, root: root) {
                let shortest = ModelSequence.shrink(sequence, root: root)
                let listing = shortest.steps.enumerated().map { "  \($0.offset): \($0.element)" }.joined(separator: "\n")
                XCTFail("""
                    seed \(seed) (tag bits \(sequence.tagBits), first version \(sequence.firstVersion)) failed: \(failure)
                    shortest failing sequence (\(shortest.steps.count) steps), failing with: \(ModelRunner.run(shortest, root: root) ?? "?")
                    \(listing)
                    rerun: LAYERFS_MODEL_FIRST_SEED=\(seed) LAYERFS_MODEL_SEQUENCES=1 swift test --filter LifetimeModelTests
                    """)
                return
            }
        }
        print("lifetime model: \(count) sequences, \(steps) steps, seeds \(firstSeed)..<\(firstSeed + UInt64(count))")
    }

    /// The 16-bit tag wraps within one mount: versions cross 65 535 -> 65 536 while the kernel
    /// holds nodes from before the wrap, and no node id is handed out for two contents.
    func testVersionTagWrapsWithoutReuse() throws {
        let root = try ModelVolume.scratchRoot()
        defer { SystemCalls.removeTree(root) }
        var steps: [ModelStep] = [.write(dimension: 1, seed: 1, fileByFile: false), .lookup(dimension: 1, layer: 1),
                                  .lookup(dimension: 1, layer: 2)]
        for i in 0..<40 {
            steps.append(.write(dimension: 1, seed: UInt64(100 + i), fileByFile: i % 2 == 0))
            steps.append(.refresh)
            steps.append(.listStart(dimension: 1, chunk: 3 + i % 5))
            steps.append(.listContinue(dimension: 1, chunk: 64))
            if i % 3 == 0 { steps.append(.forget(pick: i, count: 1)) }
        }
        let sequence = ModelSequence(seed: 0, tagBits: 16, firstVersion: 65_536 - 20, steps: steps)
        var runner = ModelRunner(sequence, root: root)
        XCTAssertNil(runner.runAll())
        XCTAssertGreaterThan(runner.highestVersionSeen, 65_536, "the tag wrapped")
        XCTAssertGreaterThan(runner.handedOutPairs, 100)
    }
}

// MARK: - Steps and sequences

enum ModelStep: CustomStringConvertible {
    case lookup(dimension: Int, layer: UInt32)
    /// READDIRPLUS from the start, one call with room for `chunk` entries.
    case listStart(dimension: Int, chunk: Int)
    /// The next READDIRPLUS call of a listing started earlier (on the directory node it started on).
    case listContinue(dimension: Int, chunk: Int)
    /// FORGET of `count` lookups of the `pick`-th node the model holds (modulo their number).
    case forget(pick: Int, count: UInt64)
    /// A new generation written by `pack` (creating the dimension if it is absent).
    case write(dimension: Int, seed: UInt64, fileByFile: Bool)
    case removeDimension(Int)
    case refresh
    /// GETATTR, GETXATTR and READDIR of the dimension's directory node as the model knows it.
    case statDimension(Int)

    var description: String {
        switch self {
        case .lookup(let d, let l): "LOOKUP D0\(d)/layer-\(l)"
        case .listStart(let d, let c): "READDIRPLUS D0\(d) from the start, room for \(c)"
        case .listContinue(let d, let c): "READDIRPLUS D0\(d) continued, room for \(c)"
        case .forget(let p, let c): "FORGET \(c) of held node #\(p)"
        case .write(let d, let s, let f): "write D0\(d) (change seed \(s)\(f ? ", file by file" : ""))"
        case .removeDimension(let d): "rm -r D0\(d)"
        case .refresh: "refresh"
        case .statDimension(let d): "stat D0\(d)"
        }
    }
}

struct ModelSequence {
    var seed: UInt64
    var tagBits: Int
    var firstVersion: UInt64
    var steps: [ModelStep]

    static func generate(seed: UInt64) -> ModelSequence {
        var random = SplitMix64(seed: seed)
        // Narrow tags make tags collide (and updates defer) within a few updates; the wide
        // one starts just below its wrap.
        let tagBits = [2, 3, 16][Int(seed % 3)]
        let firstVersion: UInt64 = tagBits == 16 ? 65_536 - UInt64(random.next() % 8) : 1 + random.next() % 4
        var steps: [ModelStep] = [.write(dimension: 1, seed: random.next(), fileByFile: false)]
        let length = 12 + Int(random.next() % 40)
        while steps.count < length {
            let d = random.next() % 4 == 0 ? 2 : 1
            switch random.next() % 20 {
            case 0...4: steps.append(.lookup(dimension: d, layer: UInt32(1 + random.next() % 6)))
            case 5...6: steps.append(.listStart(dimension: d, chunk: 1 + Int(random.next() % 6)))
            case 7...8: steps.append(.listContinue(dimension: d, chunk: 1 + Int(random.next() % 6)))
            case 9...10: steps.append(.forget(pick: Int(random.next() % 64), count: 1 + random.next() % 3))
            case 11...14:
                steps.append(.write(dimension: d, seed: random.next(), fileByFile: random.next() % 3 == 0))
                // Most updates are taken before the kernel acts again; some are not.
                if random.next() % 3 != 0 { steps.append(.refresh) }
            case 15: steps.append(.removeDimension(d))
            case 16...17: steps.append(.refresh)
            default: steps.append(.statDimension(d))
            }
        }
        return ModelSequence(seed: seed, tagBits: tagBits, firstVersion: firstVersion, steps: steps)
    }

    /// The shortest failing sequence found: the shortest failing prefix, then single steps
    /// removed while it still fails.
    static func shrink(_ sequence: ModelSequence, root: String) -> ModelSequence {
        var best = sequence
        for length in 1...sequence.steps.count {
            var prefix = sequence
            prefix.steps = Array(sequence.steps.prefix(length))
            if ModelRunner.run(prefix, root: root) != nil { best = prefix; break }
        }
        var i = best.steps.count - 1
        while i >= 0 {
            var candidate = best
            candidate.steps.remove(at: i)
            if !candidate.steps.isEmpty, ModelRunner.run(candidate, root: root) != nil { best = candidate }
            i -= 1
        }
        return best
    }
}

struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

// MARK: - The volume the producer writes

/// What a layer file shows: its bytes and its mtime.
struct LayerContent: Equatable, Hashable, CustomStringConvertible {
    var bytes: String
    var time: Int64
    var description: String { "\"\(bytes)\"@\(time)" }
}

/// A scratch volume with dimensions D01 and D02, written with the real packer.
struct ModelVolume {
    let base: String
    private(set) var written = 0

    /// Scratch space on tmpfs where there is one: the model writes tens of thousands of
    /// generations, and fsync there costs nothing.
    static func scratchRoot() throws -> String {
        try ScratchVolume.directory("model", in: access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp")
    }

    init(base: String) {
        self.base = base
        for sub in ["", "/consciousness", "/proto", "/temp"] { mkdir(base + sub, 0o755) }
    }

    func location(_ d: Int) -> DimensionLocation {
        let name = DimensionLocation.directoryName(for: UInt32(d))
        return DimensionLocation(kind: .consciousness(UInt32(d)), directory: base + "/consciousness/" + name, displayPath: "consciousness/" + name)
    }

    mutating func write(_ d: Int, _ layers: [UInt32: LayerContent], fileByFile: Bool) throws {
        written += 1
        let input = base + "/temp/in\(written)"
        mkdir(input, 0o755)
        defer { SystemCalls.removeTree(input) }
        var sources: [PackLayerSource] = []
        for (id, content) in layers.sorted(by: { $0.key < $1.key }) {
            let path = input + "/layer-\(id)"
            try Packer.writeFile(path, Array(content.bytes.utf8), display: path)
            sources.append(PackLayerSource(id: id, path: path, size: UInt64(content.bytes.utf8.count), updatedAt: Timestamp(seconds: content.time)))
        }
        var options = Packer.Options(time: Timestamp(seconds: 1_700_000_000 + Int64(written)))
        options.fileByFile = fileByFile
        _ = try Packer.pack(sources, into: location(d), options: options)
    }

    func remove(_ d: Int) { SystemCalls.removeTree(location(d).directory) }
}

// MARK: - The runner: core and kernel model side by side

struct ModelRunner {
    struct Held { var count: UInt64; var content: LayerContent; var generation: UInt64; var dimension: Int }
    struct Listing { var node: NodeID; var offset: Int }

    let sequence: ModelSequence
    let fs: FileSystem
    var volume: ModelVolume
    /// What the producer has written, per dimension (nil: absent).
    var disk: [Int: [UInt32: LayerContent]] = [:]
    /// What the core serves, as far as the model can tell (nil: not loaded / not served).
    var served: [Int: [UInt32: LayerContent]] = [:]
    /// Dimensions the core has loaded since they last (re)appeared.
    var loaded: Set<Int> = []
    /// The kernel: nlookup per node id it holds, with what it was handed.
    var held: [NodeID: Held] = [:]
    /// Every (node id, generation) ever handed out, with its content.
    var everHanded: [UInt64: [UInt64: LayerContent]] = [:]
    var listings: [Int: Listing] = [:]
    var writeCounter: UInt64 = 0
    private(set) var highestVersionSeen: UInt64 = 0
    private(set) var handedOutPairs = 0

    var exactFreshness: Bool { sequence.tagBits == 16 }

    init(_ sequence: ModelSequence, root: String) {
        self.sequence = sequence
        let base = root + "/v"
        SystemCalls.removeTree(base)
        volume = ModelVolume(base: base)
        var configuration = FileSystem.Configuration(base: base)
        configuration.nodeTagging = NodeTagging(bits: sequence.tagBits)
        configuration.firstVersion = sequence.firstVersion
        var logger = Logger(label: "model")
        logger.logLevel = .critical
        fs = FileSystem(configuration: configuration, logger: logger)
    }

    /// Runs the sequence; nil when every check held, else what failed.
    static func run(_ sequence: ModelSequence, root: String) -> String? {
        var runner = ModelRunner(sequence, root: root)
        return runner.runAll()
    }

    mutating func runAll() -> String? {
        for (i, step) in sequence.steps.enumerated() {
            do {
                try perform(step)
                try check()
            } catch {
                return "step \(i) (\(step)): \(error)"
            }
        }
        do { try forgetEverything() } catch { return "after forgetting everything: \(error)" }
        return nil
    }

    struct Violation: Error, CustomStringConvertible { var description: String }
    func fail(_ text: String) -> Violation { Violation(description: text) }

    // MARK: Steps

    mutating func perform(_ step: ModelStep) throws {
        switch step {
        case .lookup(let d, let layer):
            guard let dir = directoryNode(d) else { return }
            do {
                let entry = try fs.lookup(parent: dir, name: PackInput.fileName(forLayer: layer))
                try handOut(entry, dimension: d, layer: layer)
            } catch FSError.notFound {
                if exactFreshness, served[d]?[layer] != nil { throw fail("layer \(layer) of D0\(d) is served but LOOKUP says ENOENT") }
            }
        case .listStart(let d, let chunk):
            guard let dir = directoryNode(d) else { listings[d] = nil; return }
            listings[d] = Listing(node: dir, offset: 0)
            try list(d, chunk: chunk)
        case .listContinue(let d, let chunk):
            guard listings[d] != nil else { return }
            try list(d, chunk: chunk)
        case .forget(let pick, let count):
            let nodes = held.keys.sorted { $0.rawValue < $1.rawValue }
            guard !nodes.isEmpty else { return }
            let node = nodes[pick % nodes.count]
            guard var h = held[node] else { return }
            let n = min(count, h.count)
            fs.forget(node, count: n)
            h.count -= n
            held[node] = h.count == 0 ? nil : h
        case .write(let d, let seed, let fileByFile):
            writeCounter += 1
            let next = nextContent(d, seed: seed)
            try volume.write(d, next, fileByFile: fileByFile)
            disk[d] = next
        case .removeDimension(let d):
            volume.remove(d)
            disk[d] = nil
        case .refresh:
            _ = fs.refresh()
            for d in [1, 2] {
                guard let content = disk[d] else {
                    served[d] = nil
                    loaded.remove(d)
                    continue
                }
                if loaded.contains(d) {
                    if exactFreshness { served[d] = content } else { served[d] = nil }
                }
            }
            // A dimension the refresh saw removed comes back unloaded.
            for d in [1, 2] where disk[d] != nil && !loaded.contains(d) { served[d] = nil }
        case .statDimension(let d):
            try statDimension(d)
        }
    }

    /// The dimension's directory node, as LOOKUP of the root answers now (not counted). The
    /// lookup loads the dimension if it is not loaded yet.
    mutating func directoryNode(_ d: Int) -> NodeID? {
        guard let node = try? fs.lookup(parent: .root, name: DimensionLocation.directoryName(for: UInt32(d))).node else { return nil }
        noteAccess(d)
        return node
    }

    /// The first access to a dimension the core has not loaded loads what is on disk.
    mutating func noteAccess(_ d: Int) {
        guard !loaded.contains(d), let content = disk[d] else { return }
        loaded.insert(d)
        served[d] = exactFreshness ? content : nil
    }

    mutating func list(_ d: Int, chunk: Int) throws {
        guard let listing = listings[d] else { return }
        var accepted: [(DirectoryEntry, Int)] = []
        do {
            try fs.readDirectory(listing.node, from: listing.offset, plus: true) { item, next in
                guard accepted.count < chunk else { return false }
                accepted.append((item, next))
                return true
            }
        } catch FSError.notFound {
            listings[d] = nil
            return
        }
        for (item, _) in accepted {
            guard let entry = item.entry else { continue }
            guard let layer = PackInput.layerID(fromName: item.name) else { throw fail("listed name \(item.name)") }
            try handOut(entry, dimension: d, layer: layer)
        }
        if accepted.count < chunk {
            if exactFreshness, listing.offset == 0, directoryNode(d) == listing.node, let want = served[d] {
                let names = accepted.map(\.0.name).filter { $0 != "." && $0 != ".." }
                let expected = want.keys.sorted().map { PackInput.fileName(forLayer: $0) }
                if names != expected { throw fail("full listing \(names), served \(expected)") }
            }
            listings[d] = nil
        } else if let last = accepted.last {
            listings[d]?.offset = last.1
        }
    }

    mutating func handOut(_ entry: Entry, dimension d: Int, layer: UInt32) throws {
        let node = entry.node
        let bytes = try fs.read(node, offset: 0, size: 1 << 20) { String(decoding: $0, as: UTF8.self) }
        let content = LayerContent(bytes: bytes, time: entry.attributes.time.seconds)
        if UInt64(bytes.utf8.count) != entry.attributes.size { throw fail("\(node): size \(entry.attributes.size) but \(bytes.utf8.count) bytes") }
        if exactFreshness, let want = served[d] {
            guard want[layer] == content else { throw fail("layer \(layer) of D0\(d) handed out as \(content), served is \(want[layer].map { "\($0)" } ?? "absent")") }
        }
        if let h = held[node] {
            if h.content != content || h.generation != entry.generation {
                throw fail("\(node) handed out for \(content) (generation \(entry.generation)) while the kernel holds it for \(h.content) (generation \(h.generation))")
            }
        }
        if let before = everHanded[node.rawValue]?[entry.generation], before != content {
            throw fail("(\(node), generation \(entry.generation)) handed out for \(content), earlier for \(before)")
        }
        everHanded[node.rawValue, default: [:]][entry.generation] = content
        handedOutPairs += 1
        highestVersionSeen = max(highestVersionSeen, entry.generation << UInt64(sequence.tagBits) | UInt64(node.tag))
        held[node, default: Held(count: 0, content: content, generation: entry.generation, dimension: d)].count += 1
    }

    mutating func statDimension(_ d: Int) throws {
        guard let listing = listings[d] else { return }
        // The node a listing started on: once the refresh saw the directory go, it is ENOENT
        // to every request, even if a directory of the same name is back.
        let current = directoryNode(d)
        guard current != listing.node else { return }
        let removedSeen = fs.directory.withLock { $0.slot(named: DimensionLocation.directoryName(for: UInt32(d)), proto: false) }?
            .withState { $0.isRemoved || $0.directoryNode(slot: 0).tag != listing.node.tag } ?? true
        guard removedSeen else { return }
        func expectGone(_ what: String, _ body: () throws -> Void) throws {
            do { try body(); throw fail("\(what) of removed \(listing.node) answered") } catch FSError.notFound {}
        }
        try expectGone("GETATTR") { _ = try fs.attributes(listing.node) }
        try expectGone("LISTXATTR") { _ = try fs.extendedAttributeNames(listing.node) }
        try expectGone("GETXATTR") { _ = try fs.extendedAttribute(listing.node, name: "user.layer_count") }
        try expectGone("OPENDIR") { try fs.openDirectory(listing.node) }
        try expectGone("READDIR") { try fs.readDirectory(listing.node, from: 0, plus: false) { _, _ in true } }
        try expectGone("LOOKUP") { _ = try fs.lookup(parent: listing.node, name: "layer-001") }
    }

    /// The next generation of a dimension: from its current layers (ids 1-6), keep most,
    /// change, add and remove some; sometimes rewrite a layer's bytes unchanged with a new
    /// mtime, replace all, or empty it.
    mutating func nextContent(_ d: Int, seed: UInt64) -> [UInt32: LayerContent] {
        var random = SplitMix64(seed: seed)
        var layers = disk[d] ?? [:]
        let stamp = "d\(d) w\(writeCounter)"
        func fresh(_ id: UInt32) -> LayerContent {
            LayerContent(bytes: "\(stamp) l\(id)" + String(repeating: "x", count: Int(random.next() % 50)), time: 1_600_000_000 + Int64(writeCounter))
        }
        switch random.next() % 10 {
        case 0:
            layers = [:]
            for id in 1...UInt32(1 + random.next() % 6) { layers[id] = fresh(id) }
        case 1:
            layers = [:]
        case 2:
            if let id = layers.keys.sorted().first { layers[id]?.time += 1 }
        default:
            for _ in 0..<(1 + random.next() % 2) { let id = UInt32(1 + random.next() % 6); layers[id] = fresh(id) }
            if random.next() % 3 == 0 { layers[UInt32(1 + random.next() % 6)] = nil }
        }
        // The spec's writing rule, which pack follows: a layer whose bytes are unchanged keeps
        // its updated_at.
        for (id, old) in disk[d] ?? [:] where layers[id]?.bytes == old.bytes { layers[id]?.time = old.time }
        return layers
    }

    // MARK: Checks

    func check() throws {
        for (node, h) in held {
            let bytes: String
            do {
                bytes = try fs.read(node, offset: 0, size: 1 << 20) { String(decoding: $0, as: UTF8.self) }
            } catch {
                throw fail("held \(node) (\(h.content)) cannot be read: \(error)")
            }
            if bytes != h.content.bytes { throw fail("held \(node) reads \"\(bytes)\", was handed out as \(h.content)") }
            let attributes = try fs.attributes(node)
            if attributes.time.seconds != h.content.time || attributes.size != UInt64(h.content.bytes.utf8.count) {
                throw fail("held \(node) shows size \(attributes.size) time \(attributes.time.seconds), handed out as \(h.content)")
            }
            guard let found = fs.slotState(node.slot, { $0.held.lookups(of: node) }), let count = found else { throw fail("held \(node) unknown to the core") }
            if UInt64(count) != h.count { throw fail("\(node): the core counts \(count) lookups, the kernel holds \(h.count)") }
        }
        for slot in 1...max(1, fs.dimensionCount) where fs.dimensionCount > 0 {
            let (problems, outstanding) = fs.slotState(slot) { ($0.held.checkInvariants(), $0.held.outstanding) } ?? ([], 0)
            if let first = problems.first { throw fail("slot \(slot): \(first)") }
            let model = held.filter { $0.key.slot == slot }.reduce(UInt64(0)) { $0 + $1.value.count }
            if model != outstanding { throw fail("slot \(slot): the core has \(outstanding) lookups outstanding, the kernel holds \(model)") }
        }
    }

    mutating func forgetEverything() throws {
        for (node, h) in held { fs.forget(node, count: h.count) }
        held = [:]
        _ = fs.refresh()
        for slot in 1...max(1, fs.dimensionCount) where fs.dimensionCount > 0 {
            let (retired, outstanding) = fs.slotState(slot) { ($0.held.retiredCount, $0.held.outstanding) } ?? (0, 0)
            if retired != 0 || outstanding != 0 { throw fail("slot \(slot): \(retired) retired generations and \(outstanding) lookups left") }
        }
        // With nothing held, an update can always be taken: the newest files are served.
        for d in [1, 2] {
            guard let want = disk[d], let dir = directoryNode(d) else { continue }
            for (id, content) in want {
                let entry = try fs.lookup(parent: dir, name: PackInput.fileName(forLayer: id))
                let bytes = try fs.read(entry.node, offset: 0, size: 1 << 20) { String(decoding: $0, as: UTF8.self) }
                if bytes != content.bytes { throw fail("after forgetting everything, D0\(d) layer \(id) is \"\(bytes)\", not \(content)") }
                fs.forget(entry.node, count: 1)
            }
        }
    }
}

extension FileSystem {
    /// Test access to a slot's locked state.
    func slotState<R>(_ index: Int, _ body: (inout DimensionSlot.State) -> R) -> R? {
        guard let slot = try? slot(index) else { return nil }
        return slot.withState { state in body(&state) }
    }
}
