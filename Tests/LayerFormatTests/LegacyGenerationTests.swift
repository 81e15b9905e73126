import Glibc
import XCTest
@testable import LayerFormat

/// A legacy region as a generation (`LegacyGeneration.swift`, `Generation.load`) and as an
/// import (`VolumeImport`), with regions from `JessyWriter` (LegacyRegionTests.swift).
final class LegacyGenerationTests: XCTestCase {
    func write(_ path: String, _ bytes: [UInt8]) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        try SystemCalls.writeAll(fd, bytes, at: 0, display: path)
    }

    /// A fixture volume whose D03 holds `bytes` as its only file.
    func legacyDimension(_ bytes: [UInt8]) throws -> (Fixture, DimensionLocation) {
        let fixture = Fixture()
        let location = fixture.location(3)
        _ = mkdir(location.directory, 0o755)
        try write(location.regionPath, bytes)
        return (fixture, location)
    }

    func testIndexShiftsIdsComputesChecksumsAndKeepsJessyFields() throws {
        let layers = JessyWriter.layers(3)
        let bytes = JessyWriter.jsonRegion(dimension: 3, name: "Intention", layers: layers)
        let region = try LegacyRegion(parsing: bytes, file: "f")
        let (index, attributes) = try bytes.withUnsafeBytes { b in
            try region.index(bytes: b, dimensionID: 3, fallbackTime: Timestamp(seconds: 5), file: "f")
        }
        XCTAssertEqual(index.layers.map(\.id), [1, 2, 3])
        for (entry, layer) in zip(index.layers, layers) {
            XCTAssertEqual(entry.checksum, Digest256.sha256(layer.content.withUnsafeBytes { UnsafeRawBufferPointer($0) }))
        }
        // last_accessed is 1_729_771_300 + i in the writer; created_at 1_729_771_200.
        XCTAssertEqual(index.layers.map { $0.updatedAt?.seconds }, [1_729_771_300, 1_729_771_301, 1_729_771_302])
        XCTAssertEqual(index.createdAt?.seconds, 1_729_771_200)
        XCTAssertEqual(index.updatedAt?.seconds, 1_729_771_302)
        XCTAssertEqual(index.dimensionName, "Intention")
        XCTAssertEqual(attributes[1].parent, "D03/layer-001")
        XCTAssertEqual(attributes[1].children, "D03/layer-003")
        XCTAssertEqual(attributes[0].parent, nil)
        XCTAssertEqual(attributes[2].children, "")
        XCTAssertEqual(index.layers[1].extraFields.map(\.key), ["jessy"])
        XCTAssertTrue(index.layers[1].extraFields[0].json.hasPrefix("{\"layer_id\": {\"dimension\": 3, \"layer\": 1}"))
        // What import writes must read back as an index.
        XCTAssertEqual(try DimensionIndex(parsing: index.serialized, file: "i").layers, index.layers)
    }

    func testTextLayoutTakesTheFileTimeAndHasNoParent() throws {
        let bytes = JessyWriter.textRegion(dimension: 3, name: "Intention", layers: JessyWriter.layers(4))
        let region = try LegacyRegion(parsing: bytes, file: "f")
        let (index, attributes) = try bytes.withUnsafeBytes { b in
            try region.index(bytes: b, dimensionID: 3, fallbackTime: Timestamp(seconds: 77), file: "f")
        }
        XCTAssertEqual(index.layers.map(\.id), [1, 2, 3, 4])
        XCTAssertEqual(Set(index.layers.map { $0.updatedAt?.seconds }), [77])
        XCTAssertEqual(attributes.map(\.parent), [nil, nil, nil, nil])
        XCTAssertEqual(attributes.map(\.depth), ["0", "1", "2", "3"])
    }

    func testDimensionMismatchNamesTheField() throws {
        let bytes = JessyWriter.textRegion(dimension: 4, name: "x", layers: JessyWriter.layers(1))
        let region = try LegacyRegion(parsing: bytes, file: "f")
        XCTAssertThrowsError(try bytes.withUnsafeBytes { b in
            try region.index(bytes: b, dimensionID: 3, fallbackTime: Timestamp(seconds: 0), file: "f")
        }) { error in
            XCTAssertEqual((error as? FormatError)?.field, "header.DIMENSION")
        }
    }

    func testGenerationLoadsAndKeepsItsBytesWhenTheFileIsRewrittenInPlace() throws {
        let first = JessyWriter.jsonRegion(dimension: 3, name: "n", layers: JessyWriter.layers(2))
        let (fixture, location) = try legacyDimension(first)
        _ = fixture
        let generation = try XCTUnwrap(Generation.load(location))
        XCTAssertEqual(generation.legacy?.layout, .jessyJSON)
        XCTAssertTrue(generation.region.isSnapshot)
        let before = Array(generation.bytes(of: generation.layers[0]))
        // Jessy's rewrite: same inode, other bytes.
        var changed = first
        for i in 1024..<changed.count { changed[i] = 0x58 }
        try write(location.regionPath, changed)
        XCTAssertEqual(Array(generation.bytes(of: generation.layers[0])), before)
        XCTAssertEqual(generation.region.safeDigest(offset: generation.layers[0].offset, count: generation.layers[0].size),
                       generation.layers[0].checksum)
    }

    func testNeitherLayoutNamesTheHeader() throws {
        let (fixture, location) = try legacyDimension(Array(repeating: 0x41, count: 2000))
        _ = fixture
        XCTAssertThrowsError(try Generation.load(location)) { error in
            XCTAssertEqual((error as? FormatError)?.field, "header")
            XCTAssertEqual((error as? FormatError)?.file, location.displayPath + "/region.mmap")
        }
    }

    func testTopLevelDimensionsAreFoundAndConsciousnessWins() throws {
        let fixture = Fixture()
        for name in ["D03", "D40"] {
            _ = mkdir(fixture.base + "/" + name, 0o755)
            try write(fixture.base + "/" + name + "/region.mmap", JessyWriter.textRegion(dimension: 3, name: "x", layers: []))
        }
        _ = mkdir(fixture.base + "/D41", 0o755) // no region: not Jessy's, not a dimension
        let found = fixture.volume.dimensions().map(\.displayPath)
        XCTAssertTrue(found.contains("consciousness/D03"))
        XCTAssertFalse(found.contains("D03"))
        XCTAssertTrue(found.contains("D40"))
        XCTAssertFalse(found.contains { $0.hasSuffix("D41") })
    }

    func testImportWritesAGenerationWithTheSameLayers() throws {
        let layers = JessyWriter.layers(12) // overflows the 1024-byte header
        let (fixture, source) = try legacyDimension(JessyWriter.jsonRegion(dimension: 3, name: "n", layers: layers))
        let legacy = try XCTUnwrap(Generation.load(source))
        XCTAssertFalse(legacy.legacy?.warnings.isEmpty ?? true)
        let target = DimensionLocation(kind: .consciousness(3), directory: fixture.base + "/temp/dest/consciousness/D03",
                                       displayPath: "consciousness/D03")
        let result = try VolumeImport.importDimension(source, into: target, time: Fixture.time, maxRegionSize: nil, wait: 0)
        XCTAssertEqual(result.kind, .converted)
        let imported = try XCTUnwrap(Generation.load(target))
        XCTAssertNil(imported.legacy)
        XCTAssertEqual(imported.layers.map(\.checksum), legacy.layers.map(\.checksum))
        XCTAssertEqual(imported.layers.map(\.id), legacy.layers.map(\.id))
        XCTAssertEqual(imported.index.extraFields.map(\.key), ["jessy"])
        XCTAssertTrue(Verifier().verify(dimension: target).isClean)
        for (a, b) in zip(imported.layers, legacy.layers) {
            XCTAssertEqual(Array(imported.bytes(of: a)), Array(legacy.bytes(of: b)))
        }
        // Never replaces.
        XCTAssertThrowsError(try VolumeImport.importDimension(source, into: target, time: Fixture.time, maxRegionSize: nil, wait: 0))
    }
}
