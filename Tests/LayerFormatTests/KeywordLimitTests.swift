import CLinux
import Glibc
import XCTest
@testable import LayerFormat

/// Spec rule 7: a layer's keywords, joined as `user.keywords`, are at most 65 536 bytes.
/// Readers (the mount's loads and `verify`) and writers (`pack`) draw the line at the same byte.
final class KeywordLimitTests: XCTestCase {
    /// Keyword lists whose joined value is exactly `bytes` long, built three ways: one plain
    /// keyword, two keywords and a separator, escaped characters that count twice.
    static func lists(joinedTo bytes: Int) -> [[String]] {
        let half = (bytes - 1) / 2
        return [
            [String(repeating: "a", count: bytes)],
            [String(repeating: "a", count: half), String(repeating: "b", count: bytes - 1 - half)],
            [String(repeating: "a", count: bytes - 4) + ",\\"],
        ]
    }

    func testJoinedByteCountIsTheJoinedLength() {
        for list in [[], [""], ["a"], ["a,b", "c\\d", ""], ["é,ü", "\\\\"]] + Self.lists(joinedTo: 100) {
            XCTAssertEqual(Keywords.joinedByteCount(list), Keywords.join(list).utf8.count, "\(list)")
        }
        for list in Self.lists(joinedTo: 65_536) {
            XCTAssertEqual(Keywords.join(list).utf8.count, 65_536)
            XCTAssertNil(Keywords.limitProblem(list))
        }
        for list in Self.lists(joinedTo: 65_537) {
            XCTAssertEqual(Keywords.join(list).utf8.count, 65_537)
            XCTAssertNotNil(Keywords.limitProblem(list))
        }
    }

    func testLoadAcceptsExactlyTheLimit() throws {
        let fx = Fixture()
        for list in Self.lists(joinedTo: 65_536) {
            try fx.pack(2, ["alpha", "beta"])
            try fx.editIndex(2) { $0.layers[1].keywords = list }
            let g = try XCTUnwrap(try Generation.load(fx.location(2)))
            XCTAssertEqual(g.layers[1].keywords, list)
            XCTAssertTrue(Verifier().verify(volume: fx.volume).isClean)
        }
    }

    func testLoadAndVerifyRefuseOneByteMore() throws {
        let fx = Fixture()
        try fx.pack(1, ["good"])
        for list in Self.lists(joinedTo: 65_537) {
            try fx.pack(2, ["alpha", "beta"])
            try fx.editIndex(2) { $0.layers[1].keywords = list }
            let error = fx.loadError(2)
            XCTAssertError(error, .invalidValue, file: "consciousness/D02/index.json", field: "layers[1].keywords")
            XCTAssertEqual(error?.layerID, 2)
            XCTAssertTrue(error?.description.hasPrefix("consciousness/D02/index.json: layer 2: layers[1].keywords: joined as user.keywords they are 65537 bytes") ?? false,
                          "\(String(describing: error))")

            let report = Verifier().verify(volume: fx.volume)
            XCTAssertEqual(report.problems.count, 1, "\(report.problems)")
            XCTAssertEqual(report.problems.first?.description, error?.description)
        }
    }

    func testPackerRefusesOneByteMoreAndWritesNothing() throws {
        let fx = Fixture()
        let input = fx.base + "/temp/layer-001"
        try fx.write(input, Array("bytes".utf8))
        for list in Self.lists(joinedTo: 65_537) {
            let source = PackLayerSource(id: 1, path: input, size: 5, keywords: list, updatedAt: Fixture.time)
            XCTAssertThrowsError(try Packer.pack([source], into: fx.location(3), options: Packer.Options(time: Fixture.time))) { error in
                guard let error = error as? FormatError else { return XCTFail("\(error)") }
                XCTAssertEqual(error.kind, .invalidValue)
                XCTAssertEqual(error.file, input)
                XCTAssertEqual(error.field, "keywords")
                XCTAssertEqual(error.layerID, 1)
            }
            XCTAssertNil(try Generation.load(fx.location(3)), "D03 stays empty")
            XCTAssertEqual(fx.volume.leftoverPackDirectories(), [])
        }
        for list in Self.lists(joinedTo: 65_536) {
            let source = PackLayerSource(id: 1, path: input, size: 5, keywords: list, updatedAt: Fixture.time)
            try Packer.pack([source], into: fx.location(3), options: Packer.Options(time: Fixture.time))
            XCTAssertEqual(try Generation.load(fx.location(3))?.layers.first?.keywords, list)
        }
    }

    /// A 65 536-byte attribute ending in a lone `\` reads back as a keyword whose joined form
    /// is one byte longer. Needs a filesystem that stores 64 KiB attribute values (tmpfs does,
    /// ext4 without ea_inode does not).
    func testPackInputRefusesAnAttributeThatJoinsLonger() throws {
        var template = Array("/dev/shm/layerfs-keywords-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw XCTSkip("no /dev/shm to hold 64 KiB attributes")
        }
        let directory = String(cString: made)
        defer { SystemCalls.removeTree(directory) }
        let path = directory + "/layer-001"
        let fd = creat(path, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        close(fd)
        func set(_ value: [UInt8]) -> Bool {
            value.withUnsafeBytes { setxattr(path, "user.keywords", $0.baseAddress, $0.count, 0) } == 0
        }
        guard set([UInt8](repeating: UInt8(ascii: "a"), count: 65_536)) else {
            throw XCTSkip("/dev/shm does not store a 64 KiB attribute: \(SystemCalls.errnoText())")
        }
        let accepted = try PackInput.scan(directory)
        XCTAssertEqual(Keywords.joinedByteCount(accepted.layers[0].keywords), 65_536)

        XCTAssertTrue(set([UInt8](repeating: UInt8(ascii: "a"), count: 65_535) + [UInt8(ascii: "\\")]))
        XCTAssertThrowsError(try PackInput.scan(directory)) { error in
            guard case .format(let error)? = error as? PackError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.file, path)
            XCTAssertEqual(error.field, "user.keywords")
            XCTAssertTrue(error.message.contains("65537 bytes"), error.message)
        }
    }
}
