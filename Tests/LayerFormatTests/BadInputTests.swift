import Foundation
import Glibc
import XCTest
@testable import LayerFormat

/// Every kind of bad input the format issue lists: a typed error naming the file and the
/// field, no crash, and the volume's other dimensions still load.
final class BadInputTests: XCTestCase {
    var fx: Fixture!

    override func setUpWithError() throws {
        fx = Fixture()
        try fx.pack(1, ["good one", "good two"])
        try fx.pack(2, ["alpha", "beta", "gamma"])
    }

    override func tearDown() {
        // The good dimension is unaffected by whatever broke D02.
        XCTAssertNoThrow(try Generation.load(fx.location(1)))
        XCTAssertEqual(try Generation.load(fx.location(1))?.layers.count, 2)
        fx = nil
    }

    func testWrongMagic() throws {
        try fx.patchRegion(2, at: 0, Array("MMAQ".utf8))
        XCTAssertError(fx.loadError(2), .malformed, file: "D02/region.mmap", field: "header.magic")
    }

    func testUnsupportedVersion() throws {
        try fx.patchRegion(2, at: 4, [2, 0, 0, 0])
        XCTAssertError(fx.loadError(2), .invalidValue, file: "D02/region.mmap", field: "header.version")
    }

    func testShorterThanHeader() throws {
        try fx.write(fx.location(2).regionPath, Array("MMAP".utf8) + [UInt8](repeating: 0, count: 96))
        XCTAssertError(fx.loadError(2), .unusableFile, file: "D02/region.mmap", field: "header")
    }

    func testHeaderTotalSizeDiffersFromFileSize() throws {
        let path = fx.location(2).regionPath
        try fx.write(path, try fx.read(path) + [0, 0, 0])
        XCTAssertError(fx.loadError(2), .mismatch, file: "D02/region.mmap", field: "header.total_size")
    }

    func testIndexTotalSizeDiffers() throws {
        try fx.editIndex(2) { $0.totalSize += 4096 }
        XCTAssertError(fx.loadError(2), .mismatch, file: "D02/index.json", field: "total_size")
    }

    func testIndexLayerCountDiffers() throws {
        try fx.editIndex(2) { $0.layerCount = 2; $0.layers.removeLast() }
        XCTAssertError(fx.loadError(2), .mismatch, file: "D02/index.json", field: "layer_count")
    }

    func testLayersArrayLengthDiffersFromLayerCount() throws {
        try fx.editIndex(2) { $0.layers.removeLast() }
        XCTAssertError(fx.loadError(2), .mismatch, file: "D02/index.json", field: "layers")
    }

    func testIndexDimensionIDDiffers() throws {
        try fx.editIndex(2) { $0.dimensionID = 7 }
        XCTAssertError(fx.loadError(2), .mismatch, file: "D02/index.json", field: "dimension_id")
    }

    func testRegionChecksumDiffers() throws {
        try fx.editIndex(2) { $0.regionChecksum = Digest256(w0: 1, w1: 2, w2: 3, w3: 4) }
        XCTAssertError(fx.loadError(2), .mismatch, file: "D02/index.json", field: "region_checksum")
    }

    func testAbsentRegionChecksumIsAccepted() throws {
        try fx.editIndex(2) { $0.regionChecksum = nil }
        XCTAssertEqual(try Generation.load(fx.location(2))?.layers.count, 3)
    }

    func testDimensionIDDiffersFromDirectoryName() throws {
        let d2 = fx.location(2).directory
        let d9 = fx.base + "/consciousness/D09"
        XCTAssertEqual(rmdir(d9), 0)
        XCTAssertEqual(rename(d2, d9), 0)
        XCTAssertError(fx.loadError(9), .mismatch, file: "D09/region.mmap", field: "header.dimension_id")
    }

    func testLayerBeforeHeaderEnd() throws {
        try fx.editIndex(2) { $0.layers[0].offset = 100 }
        XCTAssertError(fx.loadError(2), .invalidValue, file: "D02/index.json", field: "layers[0].offset")
    }

    func testLayerPastEnd() throws {
        try fx.editIndex(2) { $0.layers[2].offset = $0.totalSize - 2 }
        XCTAssertError(fx.loadError(2), .invalidValue, file: "D02/index.json", field: "layers[2].offset")
    }

    func testOffsetPlusSizeOverflows() throws {
        try fx.editIndex(2) { $0.layers[1].offset = UInt64.max - 1; $0.layers[1].size = 10 }
        XCTAssertError(fx.loadError(2), .invalidValue, file: "D02/index.json", field: "layers[1].size")
    }

    func testOverlappingLayers() throws {
        try fx.editIndex(2) { $0.layers[1].offset = $0.layers[0].offset + 2 }
        let error = fx.loadError(2)
        XCTAssertError(error, .invalidValue, file: "D02/index.json", field: "offset")
        XCTAssertNotNil(error?.layerID)
    }

    func testDuplicateLayerID() throws {
        try fx.editIndex(2) { $0.layers[2].id = 1 }
        XCTAssertError(fx.loadError(2), .invalidValue, file: "D02/index.json", field: "layer_id")
    }

    func testLayerIDZero() throws {
        try fx.editIndexText(2) { $0.replacingFirst("\"layer_id\": 2", with: "\"layer_id\": 0") }
        XCTAssertError(fx.loadError(2), .invalidValue, file: "D02/index.json", field: "layers[1].layer_id")
    }

    func testMalformedJSON() throws {
        try fx.editIndexText(2) { String($0.dropLast(5)) }
        XCTAssertEqual(fx.loadError(2)?.kind, .malformed)
        try fx.editIndexText(2) { _ in "{\"dimension_id\": 2,, }" }
        let error = fx.loadError(2)
        XCTAssertEqual(error?.kind, .malformed)
        XCTAssertTrue(error?.description.contains("line 1, column 20") ?? false, "\(String(describing: error))")
    }

    func testEmptyIndex() throws {
        try fx.write(fx.location(2).indexPath, [])
        XCTAssertError(fx.loadError(2), .unusableFile, file: "D02/index.json", field: "")
    }

    func testMissingRequiredFields() throws {
        for (field, text) in [("dimension_id", "\"dimension_id\": 2,"), ("version", "\"version\": 1,"),
                              ("layer_count", "\"layer_count\": 3,"), ("total_size", "\"total_size\": 16384,")] {
            try fx.pack(2, ["alpha", "beta", "gamma"])
            try fx.editIndexText(2) { $0.replacingFirst(text, with: "") }
            XCTAssertError(fx.loadError(2), .malformed, file: "D02/index.json", field: field)
        }
        for (field, pattern) in [("offset", "\"offset\": 4096, "), ("size", "\"size\": 5, "), ("layer_id", "\"layer_id\": 1, ")] {
            try fx.pack(2, ["alpha", "beta", "gamma"])
            try fx.editIndexText(2) { $0.replacingFirst(pattern, with: "") }
            XCTAssertError(fx.loadError(2), .malformed, file: "D02/index.json", field: "layers[0].\(field)")
        }
        try fx.pack(2, ["alpha", "beta", "gamma"])
        try fx.editIndexText(2) { $0.replacingFirst("\"layers\": [", with: "\"other\": [") }
        XCTAssertError(fx.loadError(2), .malformed, file: "D02/index.json", field: "layers")
    }

    func testMistypedFields() throws {
        try fx.editIndexText(2) { $0.replacingFirst("\"layer_count\": 3", with: "\"layer_count\": \"3\"") }
        XCTAssertError(fx.loadError(2), .malformed, file: "D02/index.json", field: "layer_count")
        try fx.pack(2, ["alpha", "beta", "gamma"])
        try fx.editIndexText(2) { $0.replacingFirst("\"offset\": 4096", with: "\"offset\": 4096.5") }
        XCTAssertError(fx.loadError(2), .malformed, file: "D02/index.json", field: "layers[0].offset")
        try fx.pack(2, ["alpha", "beta", "gamma"])
        try fx.editIndexText(2) { $0.replacingFirst("\"size\": 5", with: "\"size\": -5") }
        XCTAssertError(fx.loadError(2), .malformed, file: "D02/index.json", field: "layers[0].size")
        try fx.pack(2, ["alpha", "beta", "gamma"])
        try fx.editIndexText(2) { $0.replacingFirst("\"keywords\": [", with: "\"keywords\": [7, ") }
        XCTAssertError(fx.loadError(2), .malformed, file: "D02/index.json", field: "layers[0].keywords[0]")
        try fx.pack(2, ["alpha", "beta", "gamma"])
        try fx.editIndexText(2) { $0.replacingFirst("\"layers\": [", with: "\"layers\": 5, \"x\": [") }
        XCTAssertError(fx.loadError(2), .malformed, file: "D02/index.json", field: "layers")
        try fx.pack(2, ["alpha", "beta", "gamma"])
        try fx.editIndexText(2) { $0.replacingFirst("\"dimension_id\": 2", with: "\"dimension_id\": 99999999999") }
        XCTAssertError(fx.loadError(2), .invalidValue, file: "D02/index.json", field: "dimension_id")
    }

    func testBadChecksumSpelling() throws {
        for bad in ["sha256:ABCDEF", "md5:" + String(repeating: "a", count: 64),
                    "sha256:" + String(repeating: "A", count: 64), "sha256:" + String(repeating: "a", count: 63)] {
            try fx.pack(2, ["alpha", "beta", "gamma"])
            let good = try Generation.load(fx.location(2))!.layers[0].checksum.checksumString
            try fx.editIndexText(2) { $0.replacingFirst(good, with: bad) }
            XCTAssertError(fx.loadError(2), .invalidValue, file: "D02/index.json", field: "layers[0].checksum")
        }
    }

    func testBadTimestamp() throws {
        try fx.editIndexText(2) { $0.replacingFirst("\"created_at\": \"2024-10-24T12:00:00Z\"", with: "\"created_at\": \"yesterday\"") }
        XCTAssertError(fx.loadError(2), .invalidValue, file: "D02/index.json", field: "created_at")
    }

    func testChecksumMismatchIsFoundByVerify() throws {
        let layer = try Generation.load(fx.location(2))!.layers[1]
        try fx.patchRegion(2, at: Int(layer.offset), Array("XX".utf8))
        // Loading checks structure only: a bit flip is verify's to find.
        XCTAssertNotNil(try Generation.load(fx.location(2)))
        let report = Verifier().verify(volume: fx.volume)
        XCTAssertFalse(report.isClean)
        XCTAssertEqual(report.problems.count, 2, "\(report.problems)")
        XCTAssertTrue(report.problems.contains { $0.kind == .checksumMismatch && $0.field == "header.checksum" && $0.file.hasSuffix("D02/region.mmap") })
        XCTAssertTrue(report.problems.contains { $0.kind == .checksumMismatch && $0.layerID == 2 && $0.file.hasSuffix("D02/index.json") })
    }

    func testRegionOverMaxSize() throws {
        XCTAssertError(fx.loadError(2, maxRegionSize: 8192), .tooLarge, file: "D02/region.mmap", field: "")
        XCTAssertNotNil(try Generation.load(fx.location(2), maxRegionSize: 1 << 20))
    }

    func testRegionIsADirectory() throws {
        let path = fx.location(2).regionPath
        XCTAssertEqual(unlink(path), 0)
        XCTAssertEqual(mkdir(path, 0o755), 0)
        let error = fx.loadError(2)
        XCTAssertError(error, .unusableFile, file: "D02/region.mmap", field: "")
        XCTAssertTrue(error?.message.contains("a directory") ?? false)
    }

    func testRegionIsAFIFONeverBlocks() throws {
        let path = fx.location(2).regionPath
        XCTAssertEqual(unlink(path), 0)
        XCTAssertEqual(mkfifo(path, 0o644), 0)
        // With no writer, a blocking open would hang here forever.
        let error = fx.loadError(2)
        XCTAssertError(error, .unusableFile, file: "D02/region.mmap", field: "")
        XCTAssertTrue(error?.message.contains("FIFO") ?? false)
    }

    func testRegionIsEmpty() throws {
        try fx.write(fx.location(2).regionPath, [])
        XCTAssertError(fx.loadError(2), .unusableFile, file: "D02/region.mmap", field: "")
    }

    func testRegionUnreadable() throws {
        let path = fx.location(2).regionPath
        XCTAssertEqual(unlink(path), 0)
        if getuid() == 0 {
            // Root reads through permissions: a symlink loop is the unreadable file root meets.
            XCTAssertEqual(symlink("region.mmap", path), 0)
        } else {
            try fx.write(path, [1, 2, 3])
            XCTAssertEqual(chmod(path, 0), 0)
        }
        let error = fx.loadError(2)
        XCTAssertError(error, .unusableFile, file: "D02/region.mmap", field: "")
        XCTAssertTrue(error?.message.contains("cannot open") ?? false, "\(String(describing: error))")
    }

    func testOnlyOneFilePresent() throws {
        XCTAssertEqual(unlink(fx.location(2).indexPath), 0)
        XCTAssertError(fx.loadError(2), .unusableFile, file: "D02/index.json", field: "")
        try fx.pack(2, ["alpha"])
        XCTAssertEqual(unlink(fx.location(2).regionPath), 0)
        XCTAssertError(fx.loadError(2), .unusableFile, file: "D02/region.mmap", field: "")
    }

    func testVerifyNamesOnlyTheBrokenDimension() throws {
        try fx.patchRegion(2, at: 0, Array("XXXX".utf8))
        let report = Verifier().verify(volume: fx.volume)
        XCTAssertEqual(report.problems.count, 1)
        XCTAssertTrue(report.problems[0].description.hasPrefix("consciousness/D02/region.mmap: header.magic: "), report.problems[0].description)
    }
}

extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = range(of: target) else {
            XCTFail("fixture text does not contain \(target)")
            return self
        }
        return replacingCharacters(in: range, with: replacement)
    }
}
