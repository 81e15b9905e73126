import Glibc
import Logging
import XCTest
@testable import LayerFormat
@testable import LayerFSCore

/// The read path's page-cache work without a kernel: which region blocks a READ completes
/// (served_pages=drop), that reads stay exact under every policy, and which layers the
/// prefetcher may push (only the served generation's, only nodes the kernel holds).
final class PageCacheTests: XCTestCase {
    var base = ""

    override func setUpWithError() throws {
        base = try ScratchVolume.make("pages", sample: false)
    }

    override func tearDown() { SystemCalls.removeTree(base) }

    func makeFS() -> FileSystem { makeFS(.drop) }

    /// As CoreTests packs: the real writer, layers 1, 2, ... with these contents.
    func pack(_ id: UInt32, _ contents: [String]) throws {
        let input = base + "/temp/in\(UInt32.random(in: 0...UInt32.max))"
        XCTAssertEqual(mkdir(input, 0o755), 0)
        defer { SystemCalls.removeTree(input) }
        var sources: [PackLayerSource] = []
        for (i, text) in contents.enumerated() {
            let path = input + "/f\(i)"
            try Packer.writeFile(path, Array(text.utf8), display: path)
            sources.append(PackLayerSource(id: UInt32(i + 1), path: path, size: UInt64(text.utf8.count), keywords: [],
                                           updatedAt: Timestamp(seconds: 1_700_000_000)))
        }
        let name = DimensionLocation.directoryName(for: id)
        _ = try Packer.pack(sources, into: DimensionLocation(kind: .consciousness(id), directory: base + "/consciousness/" + name, displayPath: name),
                            options: Packer.Options(time: Timestamp(seconds: 1_700_000_100)))
    }

    func bytes(_ fs: FileSystem, _ node: NodeID) throws -> String {
        try fs.read(node, offset: 0, size: 1 << 20) { String(decoding: $0, as: UTF8.self) }
    }

    func makeFS(_ policy: ServedPagePolicy) -> FileSystem {
        var configuration = FileSystem.Configuration(base: base)
        configuration.servedPages = policy
        return FileSystem(configuration: configuration, logger: Logger(label: "test"))
    }

    /// 700 layers of 4 KiB (pack puts each on its own page): the region spans two 2 MiB blocks.
    func packSmallLayers() throws -> [String] {
        let contents = (1...700).map { i in String(repeating: String(i % 10), count: 4096 - 6) + String(format: "%06d", i) }
        try pack(15, contents)
        return contents
    }

    func testLedgerReleasesABlockOnceEveryLayerByteInItWasServed() throws {
        _ = try packSmallLayers()
        let fs = makeFS(.keep)
        let d = try fs.lookup(parent: .root, name: "D15")
        let (served, _, _) = try fs.layer(try fs.lookup(parent: d.node, name: "layer-001").node)
        let records = served.table.records
        let ledger = ServedPageLedger()
        let block = Int(ServedPageLedger.blockSize)
        let inFirst = records.filter { $0.offset + $0.size <= UInt64(block) }
        XCTAssertGreaterThan(inFirst.count, 100)
        var released: [Int] = []
        for record in inFirst.dropLast() {
            released += ledger.serve(offset: record.offset, count: record.size, table: served.table, regionSize: served.region.size)
        }
        XCTAssertEqual(released, [], "one layer of block 0 not served yet")
        // The last layer of block 0, served in two READs; the second completes the block.
        let last = inFirst.last!
        XCTAssertEqual(ledger.serve(offset: last.offset, count: 100, table: served.table, regionSize: served.region.size), [])
        XCTAssertEqual(ledger.serve(offset: last.offset + 100, count: last.size - 100, table: served.table, regionSize: served.region.size), [0])
        XCTAssertEqual(ledger.serve(offset: last.offset, count: last.size, table: served.table, regionSize: served.region.size), [],
                       "a block is released once")
        // A layer straddling the block boundary counts in both blocks.
        for record in records.dropFirst(inFirst.count) {
            released += ledger.serve(offset: record.offset, count: record.size, table: served.table, regionSize: served.region.size)
        }
        XCTAssertEqual(released, [1])
    }

    func testReadsStayExactUnderEveryPolicy() throws {
        let contents = try packSmallLayers()
        for policy in ServedPagePolicy.allCases {
            let fs = makeFS(policy)
            let d = try fs.lookup(parent: .root, name: "D15")
            for round in 0..<2 {
                for i in [1, 2, 350, 511, 512, 513, 699, 700] + Array(1...700) where round == 0 || i % 7 == 0 {
                    let node = try fs.lookup(parent: d.node, name: String(format: "layer-%03d", i)).node
                    XCTAssertEqual(try bytes(fs, node), contents[i - 1], "\(policy) layer \(i) round \(round)")
                }
            }
        }
    }

    func testPrefetchOffersTheNextHeldSmallLayersOfTheServedGenerationOnly() throws {
        try pack(15, ["one", "two", "three", "four", String(repeating: "x", count: 100_000), "six"])
        let fs = makeFS()
        let d = try fs.lookup(parent: .root, name: "D15")
        let first = try fs.lookup(parent: d.node, name: "layer-001")
        XCTAssertNil(fs.layersAfter(first.node, budget: 1 << 20, largest: 65536), "the kernel holds no other layer")
        // A listing hands out every entry.
        try fs.readDirectory(d.node, from: 0, plus: true) { _, _ in true }
        let batch = try XCTUnwrap(fs.layersAfter(first.node, budget: 1 << 20, largest: 65536))
        XCTAssertEqual(batch.items.map(\.layerID), [2, 3, 4, 6], "layer 5 is over `largest`")
        XCTAssertEqual(batch.items.map { String(decoding: batch.bytes($0), as: UTF8.self) }, ["two", "three", "four", "six"])
        XCTAssertEqual(fs.layersAfter(first.node, budget: 8, largest: 65536)?.items.map(\.layerID), [2, 3], "budget in bytes")
        XCTAssertEqual(fs.layersAfter(first.node, including: true, budget: 1 << 20, largest: 65536)?.items.map(\.layerID), [1, 2, 3, 4, 6],
                       "the start of a listing pushes its first layer too")
        XCTAssertEqual(fs.layersAfter(first.node, after: 3, budget: 1 << 20, largest: 65536)?.items.map(\.layerID), [4, 6])
        // After an update the old generation is retired: nothing is pushed for its nodes.
        try pack(15, ["ONE", "two", "three", "four", "five", "six"])
        _ = fs.refresh()
        XCTAssertNil(fs.layersAfter(first.node, budget: 1 << 20, largest: 65536), "layer 1's node is of a retired generation")
        let kept = try fs.lookup(parent: d.node, name: "layer-002")
        XCTAssertEqual(fs.layersAfter(kept.node, budget: 1 << 20, largest: 65536)?.items.map(\.layerID), [3, 4, 6],
                       "the new layer 5 is not held by the kernel yet")
        // The rest of a large layer: clipped to it, of the served generation only.
        let large = try fs.lookup(parent: d.node, name: "layer-005")
        let part = try XCTUnwrap(fs.layerPart(large.node, from: 2, count: 10))
        XCTAssertEqual(part.items.map { String(decoding: part.bytes($0), as: UTF8.self) }, ["ve"])
        XCTAssertEqual(part.items.first?.layerOffset, 2)
        XCTAssertNil(fs.layerPart(large.node, from: 4, count: 10), "past the end")
        XCTAssertNil(fs.layerPart(first.node, from: 0, count: 10), "a retired generation's node")
    }
}
