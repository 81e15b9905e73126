import Foundation
import Glibc
import CLinux
import XCTest
@testable import LayerFormat

final class PackerTests: XCTestCase {
    func testPackThenLoadGivesTheBytes() throws {
        let fx = Fixture()
        let contents = ["first layer", "", String(repeating: "x", count: 10_000)]
        let result = try fx.pack(3, contents)
        XCTAssertEqual(result.method, .exchanged) // init made an empty D03
        let g = try XCTUnwrap(try Generation.load(fx.location(3)))
        XCTAssertEqual(g.layers.map(\.id), [1, 2, 3])
        XCTAssertEqual(g.layers.map(\.offset), [4096, 8192, 8192])
        XCTAssertEqual(g.region.size, 8192 + 12288)
        for (layer, text) in zip(g.layers, contents) {
            XCTAssertEqual(Array(g.bytes(of: layer)), Array(text.utf8))
            XCTAssertEqual(layer.checksum, Digest256.sha256(g.bytes(of: layer)))
        }
        XCTAssertEqual(g.dimensionName, "Intention")
        XCTAssertEqual(g.layers[0].keywords, ["k0", "a,b"])
        XCTAssertTrue(Verifier().verify(volume: fx.volume).isClean)
        // Nothing hidden is left beside the dimension.
        XCTAssertEqual(fx.volume.leftoverPackDirectories(), [])
    }

    func testSameInputAndTimeGiveIdenticalBytes() throws {
        let fx = Fixture()
        try fx.pack(4, ["a", "b"])
        let region = try fx.read(fx.location(4).regionPath), index = try fx.read(fx.location(4).indexPath)
        try fx.pack(4, ["a", "b"])
        XCTAssertEqual(try fx.read(fx.location(4).regionPath), region)
        XCTAssertEqual(try fx.read(fx.location(4).indexPath), index)
    }

    func testRepackKeepsCreatedAtUnknownFieldsAndUnchangedUpdatedAt() throws {
        let fx = Fixture()
        try fx.pack(5, ["same", "old"], time: Timestamp(seconds: 1000))
        try fx.editIndexText(5) { $0.replacingFirst("\"layers\": [", with: "\"producer\": {\"v\": 2},\n  \"layers\": [") }
        try fx.pack(5, ["same", "new"], time: Timestamp(seconds: 5000))
        let g = try XCTUnwrap(try Generation.load(fx.location(5)))
        XCTAssertEqual(g.createdAt, Timestamp(seconds: 1000))
        XCTAssertEqual(g.updatedAt, Timestamp(seconds: 5000))
        XCTAssertEqual(g.layers[0].updatedAt, Timestamp(seconds: 1000), "unchanged layer keeps its updated_at")
        XCTAssertEqual(g.layers[1].updatedAt, Timestamp(seconds: 5000))
        XCTAssertEqual(g.index.extraFields.map(\.key), ["producer"])
        XCTAssertEqual(g.index.extraFields[0].json, "{\"v\": 2}")
    }

    func testFileByFileFallback() throws {
        let fx = Fixture()
        try fx.pack(6, ["one"])
        let result = try fx.pack(6, ["one", "two"], fileByFile: true)
        XCTAssertEqual(result.method, .fileByFile)
        XCTAssertEqual(try Generation.load(fx.location(6))?.layers.count, 2)
        XCTAssertEqual(fx.volume.leftoverPackDirectories(), [])
    }

    func testMaxRegionSizeRefusesBeforeWriting() throws {
        let fx = Fixture()
        var options = Packer.Options(time: Fixture.time)
        options.maxRegionSize = 4096
        let path = fx.base + "/temp/big"
        try fx.write(path, [UInt8](repeating: 1, count: 5000))
        let source = PackLayerSource(id: 1, path: path, size: 5000, updatedAt: Fixture.time)
        XCTAssertThrowsError(try Packer.pack([source], into: fx.location(7), options: options)) { error in
            XCTAssertEqual((error as? FormatError)?.kind, .tooLarge)
        }
        XCTAssertNil(try Generation.load(fx.location(7)))
    }

    func testInputScanUsesNamesXattrsAndRefusesWrongChecksum() throws {
        let fx = Fixture()
        let input = fx.base + "/temp/in"
        XCTAssertEqual(mkdir(input, 0o755), 0)
        try fx.write(input + "/layer-010", Array("ten".utf8))
        try fx.write(input + "/layer-2", Array("two".utf8))
        try fx.write(input + "/.hidden", Array("no".utf8))
        XCTAssertEqual(setxattr(input + "/layer-010", "user.frequency", "2.5", 3, 0), 0)
        XCTAssertEqual(setxattr(input + "/layer-010", "user.keywords", "a\\,b,c", 6, 0), 0)
        XCTAssertEqual(setxattr(input, "user.dimension_name", "Custom", 6, 0), 0)
        var scan = try PackInput.scan(input)
        XCTAssertEqual(scan.layers.map(\.id), [2, 10])
        XCTAssertEqual(scan.layers[1].frequency, 2.5)
        XCTAssertEqual(scan.layers[1].keywords, ["a,b", "c"])
        XCTAssertEqual(scan.attributes.dimensionName, "Custom")
        XCTAssertEqual(scan.skipped, [PackInput.Skipped(path: input + "/.hidden", reason: "hidden file")])
        // Not every file is layer-NNN: no numbering fits, unless asked to renumber.
        try fx.write(input + "/notes.txt", Array("n".utf8))
        XCTAssertThrowsError(try PackInput.scan(input)) { error in
            XCTAssertEqual(error as? PackError, .mixedNames(input, named: 2, others: ["notes.txt"]))
        }
        scan = try PackInput.scan(input, options: PackInput.Options(renumber: true))
        XCTAssertEqual(scan.layers.map { ($0.path as NSString).lastPathComponent }, ["layer-010", "layer-2", "notes.txt"])
        XCTAssertEqual(scan.layers.map(\.id), [1, 2, 3])
        XCTAssertEqual(unlink(input + "/notes.txt"), 0)
        // A checksum attribute that disagrees with the bytes is an error, never replaced.
        let wrong = "sha256:" + String(repeating: "0", count: 64)
        XCTAssertEqual(setxattr(input + "/layer-2", "user.checksum", wrong, wrong.utf8.count, 0), 0)
        scan = try PackInput.scan(input)
        XCTAssertThrowsError(try Packer.pack(scan.layers, attributes: scan.attributes, into: fx.location(8), options: Packer.Options(time: Fixture.time))) { error in
            XCTAssertEqual((error as? FormatError)?.kind, .checksumMismatch)
            XCTAssertEqual((error as? FormatError)?.field, "user.checksum")
        }
        XCTAssertNil(try Generation.load(fx.location(8)), "nothing written")
        XCTAssertEqual(fx.volume.leftoverPackDirectories(), [])
    }

    func testEmptyingOrHalvingADimensionIsRefusedUnlessForced() throws {
        let fx = Fixture()
        XCTAssertEqual(Packer.Existing.load(fx.location(3)).layerCount, 0, "init's empty D03")
        XCTAssertTrue(Packer.Existing.load(fx.location(3)).allowsReplacement(byLayers: 0), "empty over empty")
        XCTAssertTrue(Packer.Existing.load(fx.location(99)).allowsReplacement(byLayers: 0), "empty where nothing is")
        try fx.pack(3, ["a", "b", "c"])
        let three = Packer.Existing.load(fx.location(3))
        XCTAssertEqual(three.layerCount, 3)
        XCTAssertNotNil(three.generation)
        XCTAssertEqual((0...4).map { three.allowsReplacement(byLayers: $0) }, [false, false, true, true, true])
        let four = Packer.Existing(generation: nil, layerCount: 4)
        XCTAssertEqual((0...3).map { four.allowsReplacement(byLayers: $0) }, [false, false, true, true], "half is not fewer than half")
        let one = Packer.Existing(generation: nil, layerCount: 1)
        XCTAssertEqual((0...1).map { one.allowsReplacement(byLayers: $0) }, [false, true])
        XCTAssertEqual(PackError.shrinking(output: "nv/consciousness/D03", layers: 3, input: "empty", inputLayers: 0).description,
                       "output 'nv/consciousness/D03' has 3 layers and input 'empty' has 0: replacing a dimension by an empty one needs --force")
        XCTAssertEqual(PackError.shrinking(output: "D03", layers: 3, input: "in", inputLayers: 1).description,
                       "output 'D03' has 3 layers and input 'in' has 1: replacing a dimension by fewer than half its layers needs --force")
        // Half way through an update (a new region beside the old index) is no generation,
        // but the index still says how many layers a mount may be serving.
        try fx.pack(4, ["x"])
        try fx.write(fx.location(3).regionPath, try fx.read(fx.location(4).regionPath))
        XCTAssertNil(Packer.Existing.load(fx.location(3)).generation)
        XCTAssertEqual(Packer.Existing.load(fx.location(3)).layerCount, 3)
        // Nothing readable: nothing to lose.
        try fx.write(fx.location(3).indexPath, Array("{".utf8))
        XCTAssertEqual(Packer.Existing.load(fx.location(3)).layerCount, 0)
    }

    func testEmptyDimensionIsCleanAndDiscovered() throws {
        let fx = Fixture()
        XCTAssertEqual(fx.volume.dimensions().map(\.name), (1...14).map { DimensionLocation.directoryName(for: UInt32($0)) })
        XCTAssertNil(try Generation.load(fx.location(1)))
        let report = Verifier().verify(volume: fx.volume)
        XCTAssertTrue(report.isClean, "\(report.problems)")
        XCTAssertEqual(report.emptyDimensions, 14)
    }

    func testDiscoveryIgnoresHiddenAndMisnamed() throws {
        let fx = Fixture()
        for name in ["consciousness/D5", "consciousness/.D01.pack-1", "consciousness/D100", "proto/draft", "proto/.x", "consciousness/D00"] {
            XCTAssertEqual(mkdir(fx.base + "/" + name, 0o755), 0, name)
        }
        let names = fx.volume.dimensions().map(\.name)
        XCTAssertTrue(names.contains("D100"))
        XCTAssertTrue(names.contains("draft"))
        XCTAssertFalse(names.contains("D5"))
        XCTAssertFalse(names.contains("D00"))
        XCTAssertEqual(fx.volume.leftoverPackDirectories(), ["consciousness/.D01.pack-1"])
    }
}
