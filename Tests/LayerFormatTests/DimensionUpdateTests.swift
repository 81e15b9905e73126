import Dispatch
import Glibc
import XCTest
@testable import LayerFormat

/// The update engine: each change kind alone and mixed, checked byte for byte against the
/// region a writer must produce and field by field against the expected index; rule 5; the
/// lock; the copy fallback; bad input that changes nothing.
final class DimensionUpdateTests: XCTestCase {
    let t1 = Timestamp(seconds: 1_000_000)
    let t2 = Timestamp(seconds: 2_000_000)

    /// D`id` packed with `contents` at t1 (Fixture: frequency i + 0.5, keywords ["k<i>", "a,b"]).
    func packed(_ fx: Fixture, _ id: UInt32 = 5, _ contents: [String] = ["one", "two", String(repeating: "3", count: 5000)]) throws -> Generation {
        try fx.pack(id, contents, time: t1)
        return try XCTUnwrap(try Generation.load(fx.location(id)))
    }

    func content(_ fx: Fixture, _ text: String) throws -> LayerContent {
        let path = fx.base + "/temp/new-\(UInt32.random(in: 0...UInt32.max))"
        try fx.write(path, Array(text.utf8))
        return try LayerContent.open(path)
    }

    func options(_ time: Timestamp? = nil) -> DimensionUpdate.Options {
        var o = DimensionUpdate.Options(time: time ?? t2)
        o.wait = 0
        return o
    }

    /// The region a writer produces for these layers: ascending ids, 4096-aligned from
    /// 4096, zero padding, the header last.
    func expectedRegion(dimension: UInt32, _ layers: [(UInt32, [UInt8])]) -> [UInt8] {
        let sorted = layers.sorted { $0.0 < $1.0 }
        let (offsets, total) = Packer.layout(sorted.map { UInt64($0.1.count) })
        var bytes = [UInt8](repeating: 0, count: Int(total))
        for (offset, layer) in zip(offsets, sorted) { bytes.replaceSubrange(Int(offset)..<Int(offset) + layer.1.count, with: layer.1) }
        let sum = bytes[256...].withUnsafeBytes { Digest256.sha256($0) }
        let header = RegionHeader(dimensionID: dimension, layerCount: UInt32(sorted.count), totalSize: total, checksum: sum)
        bytes.replaceSubrange(0..<256, with: header.serialized)
        return bytes
    }

    func sha(_ text: String) -> Digest256 { Array(text.utf8).withUnsafeBytes { Digest256.sha256($0) } }

    func assertClean(_ fx: Fixture, file: StaticString = #filePath, line: UInt = #line) {
        let report = Verifier().verify(volume: fx.volume)
        XCTAssertTrue(report.isClean, "\(report.problems)", file: file, line: line)
    }

    /// The dimension's two files, to show that a refused update changed nothing.
    func snapshot(_ fx: Fixture, _ id: UInt32 = 5) throws -> [[UInt8]] {
        [try fx.read(fx.location(id).regionPath), try fx.read(fx.location(id).indexPath)]
    }

    // MARK: - Each change kind

    func testPutReplacesOneLayerAndKeepsTheOthersAsTheyWere() throws {
        let fx = Fixture()
        let before = try packed(fx)
        let update = try DimensionUpdate([.init(.put(2, try content(fx, "TWO, longer")))])
        let result = try update.commit(into: fx.location(5), options: options())
        XCTAssertEqual(result.applied, [.put(id: 2, size: 11, checksum: sha("TWO, longer"))])
        XCTAssertEqual(result.applied.map(\.description), ["put layer 2 (11 bytes, \(sha("TWO, longer").checksumString))"])
        XCTAssertEqual(result.method, .exchanged)

        XCTAssertEqual(try fx.read(fx.location(5).regionPath),
                       expectedRegion(dimension: 5, [(1, Array("one".utf8)), (2, Array("TWO, longer".utf8)), (3, [UInt8](repeating: 0x33, count: 5000))]))
        let after = try XCTUnwrap(try Generation.load(fx.location(5)))
        XCTAssertEqual(after.index.dimensionName, "Temporal")
        XCTAssertEqual(after.index.createdAt, t1)
        XCTAssertEqual(after.index.updatedAt, t2)
        XCTAssertEqual(after.index.regionChecksum, after.header.checksum)
        XCTAssertEqual(after.layers[0], before.layers[0], "untouched: every field, updated_at included")
        XCTAssertEqual(after.layers[2], before.layers[2])
        XCTAssertEqual(after.layers[1], LayerEntry(id: 2, offset: 8192, size: 11, checksum: sha("TWO, longer"), frequency: 1.5,
                                                   keywords: ["k1", "a,b"], updatedAt: t2),
                       "new bytes, new updated_at; frequency and keywords kept")
        XCTAssertEqual(result.statistics.newBytes, 11)
        XCTAssertEqual(result.statistics.copiedInKernel, 4096 + 5000 + (8192 - 5000), "layers 1 and 3, each with its padding")
        XCTAssertEqual(result.statistics.hashedKeptBytes, result.statistics.copiedInKernel)
        assertClean(fx)
        XCTAssertEqual(fx.volume.leftoverPackDirectories(), [])
    }

    func testPutNewLayersPutNextAndDelete() throws {
        let fx = Fixture()
        let before = try packed(fx)
        let update = try DimensionUpdate([
            .init(.putNext(try content(fx, "next A"))), .init(.put(9, try content(fx, "nine"))), .init(.delete(1)),
            .init(.putNext(try content(fx, ""))),
        ])
        let result = try update.commit(into: fx.location(5), options: options())
        XCTAssertEqual(result.applied, [.delete(id: 1), .put(id: 9, size: 4, checksum: sha("nine")),
                                        .put(id: 10, size: 6, checksum: sha("next A")), .put(id: 11, size: 0, checksum: sha(""))],
                       "put-next counts on from the highest id in use, this call's puts included; lines by id")
        XCTAssertEqual(try fx.read(fx.location(5).regionPath), expectedRegion(dimension: 5, [
            (2, Array("two".utf8)), (3, [UInt8](repeating: 0x33, count: 5000)), (9, Array("nine".utf8)), (10, Array("next A".utf8)), (11, []),
        ]))
        let after = try XCTUnwrap(try Generation.load(fx.location(5)))
        XCTAssertEqual(after.layers.map(\.id), [2, 3, 9, 10, 11])
        XCTAssertEqual(after.layers[0].offset, 4096, "moved up: the layout is the writers' one")
        var kept = before.layers[1]
        kept.offset = 4096
        XCTAssertEqual(after.layers[0], kept, "only the offset of a kept layer changes")
        XCTAssertEqual(after.layers[2], LayerEntry(id: 9, offset: 16384, size: 4, checksum: sha("nine"), updatedAt: t2), "a new layer gets the defaults")
        XCTAssertEqual(after.layers[4].offset, 24576)
        assertClean(fx)
    }

    func testKeywordsOrFrequencyAloneChangeMetadataOnly() throws {
        let fx = Fixture()
        let before = try packed(fx)
        let regionBefore = try fx.read(fx.location(5).regionPath)
        var st = stat()
        XCTAssertEqual(stat(fx.location(5).regionPath, &st), 0)
        let update = try DimensionUpdate([.init(.keywords(2, ["x,y", "z"])), .init(.frequency(3, 2.25)), .init(.keywords(1, []))])
        let result = try update.commit(into: fx.location(5), options: options())
        XCTAssertEqual(result.applied.map(\.description),
                       ["keywords layer 1: (none)", "keywords layer 2: x\\,y,z", "frequency layer 3: 2.25"])
        XCTAssertTrue(result.statistics.regionLinked)
        XCTAssertEqual(result.statistics.copiedInKernel + result.statistics.copiedByReadWrite + result.statistics.newBytes, 0)
        XCTAssertEqual(try fx.read(fx.location(5).regionPath), regionBefore)
        var after = stat()
        XCTAssertEqual(stat(fx.location(5).regionPath, &after), 0)
        XCTAssertEqual(after.st_ino, st.st_ino, "the same region file, linked into the new generation")
        let g = try XCTUnwrap(try Generation.load(fx.location(5)))
        var expected = before.layers
        expected[0].keywords = []
        expected[1].keywords = ["x,y", "z"]
        expected[2].frequency = 2.25
        XCTAssertEqual(g.layers, expected, "bytes, checksums and updated_at unchanged")
        XCTAssertEqual(g.index.updatedAt, t2)
        XCTAssertEqual(g.header, before.header)
        assertClean(fx)
        // The old directory went, its region's other name with it.
        XCTAssertEqual(after.st_nlink, 1)
    }

    func testNameAloneAndMetadataOfALayerPutInTheSameCall() throws {
        let fx = Fixture()
        _ = try packed(fx)
        var result = try DimensionUpdate([], dimensionName: "Renamed").commit(into: fx.location(5), options: options())
        XCTAssertEqual(result.applied.map(\.description), ["name: Renamed"])
        XCTAssertEqual(try Generation.load(fx.location(5))?.dimensionName, "Renamed")
        result = try DimensionUpdate([.init(.put(7, try content(fx, "seven"))), .init(.keywords(7, ["s"])), .init(.frequency(7, 0.5))])
            .commit(into: fx.location(5), options: options())
        XCTAssertEqual(result.applied, [.put(id: 7, size: 5, checksum: sha("seven")), .keywords(id: 7, ["s"]), .frequency(id: 7, 0.5)])
        let g = try XCTUnwrap(try Generation.load(fx.location(5)))
        XCTAssertEqual(g.layers.last, LayerEntry(id: 7, offset: 20480, size: 5, checksum: sha("seven"), frequency: 0.5, keywords: ["s"], updatedAt: t2))
        XCTAssertEqual(g.dimensionName, "Renamed", "kept by a later update")
        assertClean(fx)
    }

    func testPutOfTheSameBytesKeepsUpdatedAt() throws {
        let fx = Fixture()
        let before = try packed(fx)
        _ = try DimensionUpdate([.init(.put(1, try content(fx, "one"))), .init(.put(2, try content(fx, "changed")))])
            .commit(into: fx.location(5), options: options())
        let g = try XCTUnwrap(try Generation.load(fx.location(5)))
        XCTAssertEqual(g.layers[0], before.layers[0])
        XCTAssertEqual(g.layers[1].updatedAt, t2)
    }

    func testKeptLayersGetTheirUpdatedAtWrittenOutWhenTheIndexLeftItOut() throws {
        let fx = Fixture()
        _ = try packed(fx)
        try fx.editIndex(5) { index in for i in index.layers.indices { index.layers[i].updatedAt = nil } }
        _ = try DimensionUpdate([.init(.put(2, try content(fx, "new")))]).commit(into: fx.location(5), options: options())
        let g = try XCTUnwrap(try Generation.load(fx.location(5)))
        XCTAssertEqual(g.layers.map(\.updatedAt), [t1, t2, t1], "the old index's updated_at, not the new one")
    }

    func testANewDimensionIsCreated() throws {
        let fx = Fixture()
        // Beyond init's D01-D14: no directory yet.
        let location = fx.location(20)
        let result = try DimensionUpdate([.init(.putNext(try content(fx, "first"))), .init(.putNext(LayerContent(bytes: Array("second".utf8), display: "stdin")))],
                                         dimensionName: "Twenty").commit(into: location, options: options())
        XCTAssertEqual(result.method, .created)
        XCTAssertEqual(result.applied.map(\.description).first, "name: Twenty")
        XCTAssertEqual(try fx.read(location.regionPath), expectedRegion(dimension: 20, [(1, Array("first".utf8)), (2, Array("second".utf8))]))
        let g = try XCTUnwrap(try Generation.load(location))
        XCTAssertEqual(g.index.createdAt, t2)
        XCTAssertEqual(g.index.dimensionName, "Twenty")
        // init's empty D04, and a proto-dimension in a proto/ that does not exist yet.
        _ = try DimensionUpdate([.init(.put(3, try content(fx, "x")))]).commit(into: fx.location(4), options: options())
        XCTAssertEqual(try Generation.load(fx.location(4))?.dimensionName, "Social", "the canonical name")
        SystemCalls.removeTree(fx.base + "/proto")
        let proto = DimensionLocation(kind: .proto("draft"), directory: fx.base + "/proto/draft", displayPath: "proto/draft")
        _ = try DimensionUpdate([.init(.put(1, try content(fx, "p")))]).commit(into: proto, options: options())
        XCTAssertEqual(try Generation.load(proto)?.header.dimensionID, 0)
        assertClean(fx)
    }

    func testFileByFileAndTheCopyFallbackGiveTheSameBytes() throws {
        let fx = Fixture()
        _ = try packed(fx, 5)
        _ = try packed(fx, 6)
        let change = { [self] () throws -> DimensionUpdate in
            try DimensionUpdate([.init(.put(2, try content(fx, "2!"))), .init(.putNext(try content(fx, "four")))])
        }
        let kernel = try change().commit(into: fx.location(5), options: options())
        var o = options()
        o.readWriteCopy = true
        o.fileByFile = true
        let fallback = try change().commit(into: fx.location(6), options: o)
        XCTAssertEqual(fallback.method, .fileByFile)
        XCTAssertGreaterThan(kernel.statistics.copiedInKernel, 0)
        XCTAssertEqual(kernel.statistics.copiedByReadWrite, 0)
        XCTAssertEqual(fallback.statistics.copiedInKernel, 0)
        XCTAssertEqual(fallback.statistics.copiedByReadWrite, kernel.statistics.copiedInKernel)
        XCTAssertEqual(kernel.statistics.kernelCopies, 2, "layer 1, then layer 3 at a new place")
        var region5 = try fx.read(fx.location(5).regionPath), region6 = try fx.read(fx.location(6).regionPath)
        region5.replaceSubrange(8..<12, with: [0, 0, 0, 0])
        region6.replaceSubrange(8..<12, with: [0, 0, 0, 0])
        XCTAssertEqual(region5, region6, "the same bytes but for the dimension id")
        XCTAssertEqual(try fx.read(fx.location(6).regionPath), expectedRegion(dimension: 6, [
            (1, Array("one".utf8)), (2, Array("2!".utf8)), (3, [UInt8](repeating: 0x33, count: 5000)), (4, Array("four".utf8)),
        ]))
        assertClean(fx)
        XCTAssertEqual(fx.volume.leftoverPackDirectories(), [])
    }

    func testARegionInAnotherProducersLayoutComesOutInTheWritersLayout() throws {
        try seedLayoutUpdate(kernelCopy: true)
        try seedLayoutUpdate(kernelCopy: false)
    }

    func seedLayoutUpdate(kernelCopy: Bool) throws {
        let fx = Fixture()
        // The seed's layout: layer 1 right after the header, garbage between the layers.
        var region = [UInt8](repeating: 0xEE, count: 12288)
        let a = Array("alpha".utf8), b = Array("bravo".utf8)
        region.replaceSubrange(256..<261, with: a)
        region.replaceSubrange(4352..<4357, with: b)
        let sum = region[256...].withUnsafeBytes { Digest256.sha256($0) }
        region.replaceSubrange(0..<256, with: RegionHeader(dimensionID: 8, layerCount: 2, totalSize: 12288, checksum: sum).serialized)
        try fx.write(fx.location(8).regionPath, region)
        let index = DimensionIndex(dimensionID: 8, dimensionName: nil, createdAt: t1, updatedAt: t1, layerCount: 2, totalSize: 12288,
                                   regionChecksum: sum, layers: [
                                       LayerEntry(id: 1, offset: 256, size: 5, checksum: sha("alpha")),
                                       LayerEntry(id: 2, offset: 4352, size: 5, checksum: sha("bravo")),
                                   ])
        try fx.write(fx.location(8).indexPath, index.serialized)
        assertClean(fx)
        var o = options()
        o.readWriteCopy = !kernelCopy
        let result = try DimensionUpdate([.init(.putNext(try content(fx, "charlie")))]).commit(into: fx.location(8), options: o)
        XCTAssertEqual(result.statistics.kernelCopies, kernelCopy ? 1 : 0, "both layers at the same distance: one run")
        XCTAssertEqual(try fx.read(fx.location(8).regionPath),
                       expectedRegion(dimension: 8, [(1, a), (2, b), (3, Array("charlie".utf8))]), "zeros between the layers")
        assertClean(fx)
    }

    // MARK: - Rule 5 and the lock

    func testTwoUpdatesPreparedTogetherBothLand() throws {
        let fx = Fixture()
        _ = try packed(fx)
        // Both prepared against the same generation, before either commits.
        let first = try DimensionUpdate([.init(.put(1, try content(fx, "first writer")))])
        let second = try DimensionUpdate([.init(.put(3, try content(fx, "second writer"))), .init(.keywords(1, ["both"]))])
        _ = try first.commit(into: fx.location(5), options: options())
        _ = try second.commit(into: fx.location(5), options: options())
        let g = try XCTUnwrap(try Generation.load(fx.location(5)))
        XCTAssertEqual(Array(g.bytes(of: g.layers[0])), Array("first writer".utf8), "not lost to the second")
        XCTAssertEqual(g.layers[0].keywords, ["both"])
        XCTAssertEqual(Array(g.bytes(of: g.layers[2])), Array("second writer".utf8))
        XCTAssertEqual(Array(g.bytes(of: g.layers[1])), Array("two".utf8))
        assertClean(fx)
    }

    func testConcurrentUpdatesOfDifferentLayersAllLand() throws {
        let fx = Fixture()
        _ = try packed(fx, 5, (1...8).map { "layer \($0)" })
        let updates = try (1...8).map { i in try DimensionUpdate([.init(.put(UInt32(i), try content(fx, "writer \(i)")))]) }
        let failures = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        failures.initialize(to: 0)
        defer { failures.deallocate() }
        let location = fx.location(5)
        var o = options()
        o.wait = 30
        let shared = o
        nonisolated(unsafe) let counter = failures
        DispatchQueue.concurrentPerform(iterations: updates.count) { i in
            do { _ = try updates[i].commit(into: location, options: shared) } catch { counter.pointee += 1 }
        }
        XCTAssertEqual(failures.pointee, 0)
        let g = try XCTUnwrap(try Generation.load(location))
        XCTAssertEqual(g.layers.map { String(decoding: g.bytes(of: $0), as: UTF8.self) }, (1...8).map { "writer \($0)" })
        assertClean(fx)
    }

    func testAHeldLockTimesOutNamingTheHolderAndChangesNothing() throws {
        let fx = Fixture()
        _ = try packed(fx)
        let before = try snapshot(fx)
        let holder = try WriterLock.acquire(fx.location(5), wait: 0)
        var o = options()
        o.wait = 0.2
        XCTAssertThrowsError(try DimensionUpdate([.init(.delete(1))]).commit(into: fx.location(5), options: o)) { error in
            guard case .locked(.busy(_, _, let who, let waited))? = error as? UpdateError else { return XCTFail("\(error)") }
            XCTAssertEqual(who, LockHolder.current)
            XCTAssertEqual(waited, 0.2)
            XCTAssertTrue("\(error)".hasPrefix("consciousness/D05 is being written by pid \(getpid()) on host "), "\(error)")
        }
        XCTAssertThrowsError(try DimensionUpdate([.init(.delete(1))]).preview(of: fx.location(5), options: o), "a dry run waits too")
        holder.release()
        XCTAssertEqual(try snapshot(fx), before)
        XCTAssertEqual(try DimensionUpdate([.init(.delete(1))]).preview(of: fx.location(5), options: o), [.delete(id: 1)])
    }

    // MARK: - Dry run

    func testPreviewGivesTheLinesOfTheCommitAndWritesNothing() throws {
        let fx = Fixture()
        _ = try packed(fx)
        let before = try snapshot(fx)
        let update = try DimensionUpdate([.init(.put(2, try content(fx, "new two"))), .init(.putNext(try content(fx, "n"))),
                                          .init(.delete(1)), .init(.frequency(3, 9))], dimensionName: "N")
        let lines = try update.preview(of: fx.location(5), options: options())
        XCTAssertEqual(try snapshot(fx), before)
        XCTAssertEqual(lines, try update.commit(into: fx.location(5), options: options()).applied)
        // Of a dimension that does not exist: nothing created, not even the volume.
        let nowhere = DimensionLocation(kind: .consciousness(3), directory: fx.base + "/nv/consciousness/D03", displayPath: "nv/consciousness/D03")
        XCTAssertEqual(try DimensionUpdate([.init(.putNext(try content(fx, "x")))]).preview(of: nowhere, options: options()),
                       [.put(id: 1, size: 1, checksum: sha("x"))])
        XCTAssertNil(SystemCalls.fileStatus(fx.base + "/nv"))
    }

    // MARK: - Bad input changes nothing

    func testBadInputIsRefusedBeforeAnythingChanges() throws {
        let fx = Fixture()
        _ = try packed(fx)
        let before = try snapshot(fx)
        func refused(_ make: () throws -> DimensionUpdate, _ expected: String, maxRegionSize: UInt64? = nil,
                     file: StaticString = #filePath, line: UInt = #line) {
            var o = options()
            o.maxRegionSize = maxRegionSize
            XCTAssertThrowsError(try make().commit(into: fx.location(5), options: o), file: file, line: line) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error)", file: file, line: line)
                XCTAssertTrue(error is UpdateError, file: file, line: line)
            }
            XCTAssertThrowsError(try make().preview(of: fx.location(5), options: o), "the dry run refuses it too", file: file, line: line)
            XCTAssertEqual(try snapshot(fx), before, file: file, line: line)
            XCTAssertEqual(fx.volume.leftoverPackDirectories(), [], file: file, line: line)
        }
        XCTAssertThrowsError(try LayerContent.open(fx.base + "/temp/nosuch")) { error in
            XCTAssertEqual("\(error)", "input '\(fx.base)/temp/nosuch' does not exist")
        }
        XCTAssertThrowsError(try LayerContent.open(fx.base + "/temp")) { error in
            XCTAssertEqual("\(error)", "input '\(fx.base)/temp' is a directory, not a regular file")
        }
        refused({ try DimensionUpdate([.init(.put(3, try content(fx, "a")), origin: "--put 3=a"), .init(.delete(3), origin: "--delete 3")]) },
                "'--put 3=a' and '--delete 3' both change layer 3")
        refused({ try DimensionUpdate([.init(.put(3, try content(fx, "a"))), .init(.put(3, try content(fx, "b")))]) }, "both change layer 3")
        refused({ try DimensionUpdate([.init(.keywords(2, ["a"])), .init(.keywords(2, ["b"]))]) }, "both change layer 2")
        refused({ try DimensionUpdate([.init(.delete(2)), .init(.frequency(2, 1))]) }, "both change layer 2")
        refused({ try DimensionUpdate([.init(.delete(5), origin: "--delete 5")]) },
                "'--delete 5': 'consciousness/D05' has no layer 5 (it has 3 layers, ids 1 to 3)")
        refused({ try DimensionUpdate([.init(.keywords(4, ["a"]))]) }, "has no layer 4")
        refused({ try DimensionUpdate([.init(.frequency(4, 1))]) }, "has no layer 4")
        refused({ try DimensionUpdate([.init(.keywords(1, [String(repeating: "k", count: 65_537)]))]) },
                "joined as user.keywords they are 65537 bytes, over the limit of 65536")
        refused({ try DimensionUpdate([.init(.frequency(1, .nan))]) }, "not a finite number")
        refused({ try DimensionUpdate([.init(.frequency(1, .infinity))]) }, "not a finite number")
        refused({ try DimensionUpdate([.init(.delete(0))]) }, "layer ids are 1 to 4294967295")
        refused({ try DimensionUpdate([]) }, "no change given")
        refused({ try DimensionUpdate([.init(.put(4, LayerContent(bytes: [UInt8](repeating: 1, count: 4097), display: "stdin")))]) },
                "consciousness/D05/region.mmap: region would be 28672 bytes, over the maximum of 20480", maxRegionSize: 20480)
        try fx.editIndex(5) { $0.layers[2].id = UInt32.max }
        XCTAssertThrowsError(try DimensionUpdate([.init(.putNext(try content(fx, "x")))]).commit(into: fx.location(5), options: options())) { error in
            XCTAssertTrue("\(error)".contains("already has layer 4294967295"), "\(error)")
        }
    }

    func testAnUnreadableOrHalfWrittenGenerationIsNamedAndLeftForPack() throws {
        let fx = Fixture()
        _ = try packed(fx)
        _ = try packed(fx, 6, ["other"])
        // Half way through a file-by-file write: D06's region beside D05's index.
        var region = try fx.read(fx.location(6).regionPath)
        region.replaceSubrange(8..<12, with: [5, 0, 0, 0])
        try fx.write(fx.location(5).regionPath, region)
        let before = try snapshot(fx)
        XCTAssertThrowsError(try DimensionUpdate([.init(.delete(1))]).commit(into: fx.location(5), options: options())) { error in
            guard case .unreadableBase(let problem)? = error as? UpdateError else { return XCTFail("\(error)") }
            XCTAssertEqual(problem.file, "consciousness/D05/index.json")
            XCTAssertEqual(problem.field, "layer_count")
            XCTAssertTrue("\(error)".hasSuffix("must be rebuilt with 'layerfs pack' first"), "\(error)")
        }
        XCTAssertEqual(try snapshot(fx), before)
        try fx.write(fx.location(5).indexPath, Array("{\"dimension_id\": 5,".utf8))
        XCTAssertThrowsError(try DimensionUpdate([.init(.delete(1))]).commit(into: fx.location(5), options: options())) { error in
            XCTAssertTrue("\(error)".hasPrefix("consciousness/D05/index.json: "), "\(error)")
        }
    }
}
