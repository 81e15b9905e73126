import Dispatch
import Glibc
import Logging
import Synchronization
import XCTest
@testable import LayerFormat
@testable import LayerFSCore

/// The writable core without a kernel, under concurrency: worker threads creating, writing,
/// fsyncing and closing layers while the batching timer commits, readers list and read, and
/// other writers (a second writable mount, `layerfs update`'s engine) change the same
/// dimension. Afterwards every change must be in the committed generation, read back by a
/// fresh read-only core, and the volume must verify.
final class WritableConcurrencyTests: XCTestCase {
    var base = ""

    override func setUpWithError() throws {
        base = try ScratchVolume.make("writable-core", sample: true)
    }

    override func tearDown() { SystemCalls.removeTree(base) }

    func makeFS(writable: Bool) -> FileSystem {
        var configuration = FileSystem.Configuration(base: base)
        configuration.writable = writable
        configuration.cache.noOpen = !writable
        return FileSystem(configuration: configuration, logger: Logger(label: "test"))
    }

    /// Deterministic bytes of layer `id`, version `round`.
    func content(_ id: UInt32, _ round: Int) -> [UInt8] {
        let count = 1 + Int(id * 7919 + UInt32(round) * 104_729) % 70_000
        return (0..<count).map { UInt8(truncatingIfNeeded: Int(id) &* 31 &+ round &* 17 &+ $0 &* 13) }
    }

    /// Creates (or opens for writing) layer `id` in `parent`, writes `bytes` in pieces of at
    /// most 16 KiB, fsyncs when asked, closes.
    func put(_ fs: FileSystem, _ parent: NodeID, _ id: UInt32, _ bytes: [UInt8], fsync: Bool) throws {
        let name = PackInput.fileName(forLayer: id)
        let node: NodeID, handle: UInt64
        if let existing = try? fs.lookup(parent: parent, name: name) {
            node = existing.node
            handle = try fs.openHandle(node, flags: O_WRONLY | O_TRUNC)
        } else {
            (node, handle) = try { let (e, h) = try fs.create(parent: parent, name: name, flags: O_WRONLY); return (e.node, h) }()
        }
        var offset = 0
        while offset < bytes.count {
            let n = min(16_384, bytes.count - offset)
            let written = try bytes[offset..<offset + n].withUnsafeBytes { try fs.write(node, handle: handle, offset: UInt64(offset), bytes: $0) }
            XCTAssertEqual(written, n)
            offset += n
        }
        if fsync { try fs.fsync(node, handle: handle) }
        try fs.flush(handle: handle)
        fs.release(handle: handle)
    }

    func committedBytes(_ id: UInt32, in dimension: String) throws -> [UInt8]? {
        let fs = makeFS(writable: false)
        let d = try fs.lookup(parent: .root, name: dimension)
        guard let layer = try? fs.lookup(parent: d.node, name: PackInput.fileName(forLayer: id)) else { return nil }
        return try fs.read(layer.node, offset: 0, size: 1 << 20) { Array($0) }
    }

    func verify() throws {
        let report = Verifier().verify(volume: Volume(base: base))
        XCTAssertTrue(report.problems.isEmpty, "verify: \(report.problems)")
    }

    /// 8 threads x 12 layers, each written twice (the second time through copy on write of the
    /// committed layer, every third with fsync), while a reader thread lists and reads the
    /// dimension and another forces commits. Every final version must be committed.
    func testConcurrentWritersCommitEverything() throws {
        let fs = makeFS(writable: true)
        let d = try fs.lookup(parent: .root, name: "D02")
        let threads = 8, perThread = 12
        let failures = Mutex<[String]>([])
        let stop = Atomic<Bool>(false)
        let group = DispatchGroup()
        // A reader: listings and reads of whatever is there, never an error but ENOENT.
        DispatchQueue.global().async(group: group) {
            while !stop.load(ordering: .acquiring) {
                var nodes: [NodeID] = []
                do {
                    try fs.readDirectory(d.node, from: 0, plus: true) { entry, _ in
                        if let e = entry.entry { nodes.append(e.node) }
                        return true
                    }
                    for node in nodes { _ = try? fs.read(node, offset: 0, size: 4096) { $0.count } }
                } catch {
                    failures.withLock { $0.append("reader: \(error)") }
                }
            }
        }
        // A committer besides the timer: what fsyncdir does, at random moments.
        DispatchQueue.global().async(group: group) {
            while !stop.load(ordering: .acquiring) {
                do { try fs.fsyncDirectory(d.node) } catch { failures.withLock { $0.append("fsyncdir: \(error)") } }
                usleep(3_000)
            }
        }
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            for k in 1...perThread {
                let id = UInt32(100 + t * perThread + k)
                for round in 0..<2 {
                    do {
                        try put(fs, d.node, id, content(id, round), fsync: (k + round) % 3 == 0)
                    } catch {
                        failures.withLock { $0.append("writer \(t) layer \(id) round \(round): \(error)") }
                    }
                }
            }
        }
        stop.store(true, ordering: .releasing)
        group.wait()
        fs.finishWrites()
        XCTAssertEqual(failures.withLock { $0 }, [])
        for t in 0..<threads {
            for k in 1...perThread {
                let id = UInt32(100 + t * perThread + k)
                let got = try committedBytes(id, in: "D02")
                XCTAssertTrue(got == content(id, 1), "layer \(id): \(got.map { "\($0.count) bytes" } ?? "absent"), not the last version written")
            }
        }
        try verify()
    }

    /// Two writable cores (two mounts) and `layerfs update`'s engine change different layers
    /// of one dimension at once: the commits are rebased on each other, nothing is lost.
    func testTwoWritableMountsAndAnUpdateLoseNothing() throws {
        let first = makeFS(writable: true), second = makeFS(writable: true)
        let location = DimensionLocation(kind: .consciousness(3), directory: base + "/consciousness/D03", displayPath: "D03")
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 3) { who in
            for k in 1...15 {
                let id = UInt32(200 + who * 100 + k)
                do {
                    switch who {
                    case 0, 1:
                        let fs = who == 0 ? first : second
                        let d = try fs.lookup(parent: .root, name: "D03")
                        try put(fs, d.node, id, content(id, 0), fsync: k % 4 == 0)
                    default:
                        let update = try DimensionUpdate([.init(.put(id, LayerFormat.LayerContent(bytes: content(id, 0), display: "bytes")))])
                        _ = try update.commit(into: location, options: DimensionUpdate.Options(time: .now()))
                    }
                } catch {
                    failures.withLock { $0.append("writer \(who) layer \(id): \(error)") }
                }
            }
        }
        first.finishWrites()
        second.finishWrites()
        XCTAssertEqual(failures.withLock { $0 }, [])
        for who in 0..<3 {
            for k in 1...15 {
                let id = UInt32(200 + who * 100 + k)
                let got = try committedBytes(id, in: "D03")
                XCTAssertTrue(got == content(id, 0), "layer \(id) of writer \(who): \(got.map { "\($0.count) bytes" } ?? "absent")")
            }
        }
        // The sample layers that nobody touched are still there.
        XCTAssertNotNil(try committedBytes(1, in: "D03"))
        try verify()
    }

    /// Handles closed while a commit runs: a write that lands during the commit keeps the
    /// file pending, and the next commit takes its final bytes.
    func testWritesDuringACommitAreNotLost() throws {
        let fs = makeFS(writable: true)
        let d = try fs.lookup(parent: .root, name: "D04")
        let group = DispatchGroup()
        let stop = Atomic<Bool>(false)
        DispatchQueue.global().async(group: group) {
            while !stop.load(ordering: .acquiring) { try? fs.fsyncDirectory(d.node) }
        }
        for round in 0..<30 { try put(fs, d.node, 7, content(7, round), fsync: false) }
        stop.store(true, ordering: .releasing)
        group.wait()
        fs.finishWrites()
        XCTAssertTrue(try committedBytes(7, in: "D04") == content(7, 29), "layer 7 is not the last version written")
        try verify()
    }
}

// @unchecked: `base` is set in setUp, before any thread starts, and only read afterwards.
extension WritableConcurrencyTests: @unchecked Sendable {}
