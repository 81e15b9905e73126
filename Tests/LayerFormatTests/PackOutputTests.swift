import Glibc
import XCTest
@testable import LayerFormat

/// pack writes only where readers look: consciousness/DNN as `directoryName(for:)` spells it,
/// and proto/NAME with a valid NAME.
final class PackOutputTests: XCTestCase {
    func refusal(_ output: String, _ request: PackOutput.Request, file: StaticString = #filePath, line: UInt = #line) -> PackError? {
        do {
            let plan = try PackOutput.plan(output, for: request)
            XCTFail("expected \(output) to be refused, got \(plan)", file: file, line: line)
            return nil
        } catch {
            return error
        }
    }

    func testCanonicalNamesAreAccepted() throws {
        let fx = Fixture()
        let c = fx.base + "/consciousness"
        for (id, name) in [(5, "D05"), (1, "D01"), (10, "D10"), (14, "D14"), (15, "D15"), (99, "D99"), (100, "D100"), (4_294_967_295, "D4294967295")] {
            let plan = try PackOutput.plan(c + "/" + name, for: .dimension(UInt32(id)))
            XCTAssertEqual(plan.location.kind, .consciousness(UInt32(id)))
            XCTAssertEqual(plan.location.directory, c + "/" + name)
            XCTAssertEqual(plan.missingParents, [])
            // What the writer accepts is exactly what discovery finds.
            XCTAssertEqual(DimensionLocation.consciousnessID(fromDirectoryName: name), UInt32(id))
        }
        let trailing = try PackOutput.plan(c + "/D05//", for: .dimension(5))
        XCTAssertEqual(trailing.location.directory, c + "/D05")
        for name in ["draft", "D05", "a.b_c-1", String(repeating: "x", count: 64)] {
            let plan = try PackOutput.plan(fx.base + "/proto/" + name, for: .proto)
            XCTAssertEqual(plan.location.kind, .proto(name))
            XCTAssertEqual(plan.location.expectedID, 0)
        }
    }

    func testNamesNoReaderSeesAreRefusedWithTheExpectedName() {
        let fx = Fixture()
        let v = fx.base
        for (output, request, option, expected) in [
            ("\(v)/consciousness/D5", PackOutput.Request.dimension(5), "--dimension 5", "\(v)/consciousness/D05"),
            ("\(v)/consciousness/D005", .dimension(5), "--dimension 5", "\(v)/consciousness/D05"),
            ("\(v)/consciousness/d05", .dimension(5), "--dimension 5", "\(v)/consciousness/D05"),
            ("\(v)/consciousness/D00", .dimension(5), "--dimension 5", "\(v)/consciousness/D05"),
            ("\(v)/consciousness/foo", .dimension(5), "--dimension 5", "\(v)/consciousness/D05"),
            ("\(v)/consciousness/D0100", .dimension(100), "--dimension 100", "\(v)/consciousness/D100"),
            ("\(v)/proto/D05", .dimension(5), "--dimension 5", "\(v)/consciousness/D05"),
            ("\(v)/D05", .dimension(5), "--dimension 5", "\(v)/consciousness/D05"),
            ("\(v)/consciousness/foo", .proto, "--proto", "\(v)/proto/foo"),
            ("\(v)/foo", .proto, "--proto", "\(v)/proto/foo"),
            // A parent the path does not spell is resolved: consciousness/. is consciousness.
            ("\(v)/consciousness/./D5", .dimension(5), "--dimension 5", "\(v)/consciousness/./D05"),
        ] {
            XCTAssertEqual(refusal(output, request), .outputMismatch(output: output, option: option, expected: expected, note: nil), output)
        }
        let d15 = "\(v)/consciousness/D15"
        XCTAssertEqual(refusal(d15, .dimension(5))?.description,
                       "output '\(d15)' does not match --dimension 5 ('D15' is dimension 15): expected '\(v)/consciousness/D05'")
        XCTAssertEqual(refusal("nv/consciousness/D5", .dimension(5))?.description,
                       "output 'nv/consciousness/D5' does not match --dimension 5: expected 'nv/consciousness/D05'")
        for name in [".x", "..x", "a b", "é", "a:b", String(repeating: "x", count: 65)] {
            let output = "\(v)/proto/" + name
            XCTAssertEqual(refusal(output, .proto)?.description,
                           "output '\(output)' does not match --proto: '\(name)' is not a proto name (1 to 64 of A-Z a-z 0-9 . _ -, not starting with '.')")
        }
        XCTAssertNil(try? Generation.load(fx.location(5)), "nothing written")
    }

    func testOutputMustBeADirectoryOrAbsent() throws {
        let fx = Fixture()
        let c = fx.base + "/consciousness"
        XCTAssertEqual(symlink(c + "/D01", c + "/D20"), 0)
        XCTAssertEqual(refusal(c + "/D20", .dimension(20))?.description,
                       "output '\(c)/D20' is a symbolic link: pack replaces the directory itself, so give the dimension directory, not a link to it")
        try fx.write(c + "/D21", [])
        XCTAssertEqual(refusal(c + "/D21", .dimension(21))?.description, "output '\(c)/D21' exists and is a regular file, not a directory")
        try fx.write(fx.base + "/file", [])
        XCTAssertEqual(refusal(fx.base + "/file/consciousness/D01", .dimension(1))?.description,
                       "output '\(fx.base)/file/consciousness/D01' cannot be created: '\(fx.base)/file' is a regular file, not a directory")
        XCTAssertEqual(refusal(".", .dimension(1)), .outputUnusable(output: ".", problem: "names no directory of its own: give the dimension directory itself, e.g. 'data/mmap/consciousness/D05'"))
        XCTAssertNotNil(refusal("", .proto))
    }

    func testMissingParentsAreListedOutermostFirst() throws {
        let fx = Fixture()
        let plan = try PackOutput.plan(fx.base + "/new/volume/consciousness/D07", for: .dimension(7))
        XCTAssertEqual(plan.missingParents, [fx.base + "/new", fx.base + "/new/volume", fx.base + "/new/volume/consciousness"])
        XCTAssertEqual(try PackOutput.plan(fx.base + "/proto/draft", for: .proto).missingParents, [])
    }

    func testPathHelpers() {
        XCTAssertEqual(PackOutput.split("a/b/c").parent, "a/b")
        XCTAssertEqual(PackOutput.split("a//c").parent, "a")
        XCTAssertEqual(PackOutput.split("c").parent, ".")
        XCTAssertEqual(PackOutput.split("/c").parent, "/")
        XCTAssertEqual(PackOutput.grandparent("nv/proto"), "nv")
        XCTAssertEqual(PackOutput.grandparent("proto"), ".")
        XCTAssertEqual(PackOutput.grandparent("."), "..")
        XCTAssertEqual(PackOutput.grandparent("a/.."), "a/../..")
        XCTAssertEqual(PackOutput.join(".", "consciousness", "D05"), "consciousness/D05")
        XCTAssertEqual(PackOutput.join("/", "proto", "x"), "/proto/x")
        XCTAssertEqual(PackOutput.join("nv", "proto", "x"), "nv/proto/x")
    }
}
