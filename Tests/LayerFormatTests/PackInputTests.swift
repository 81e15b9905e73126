import Glibc
import XCTest
@testable import LayerFormat

/// Every input entry becomes a layer, is listed as skipped with its reason, or stops the pack.
final class PackInputTests: XCTestCase {
    var fx: Fixture!
    var input: String!

    override func setUp() {
        fx = Fixture()
        input = fx.base + "/temp/in"
        XCTAssertEqual(mkdir(input, 0o755), 0)
    }

    override func tearDown() { fx = nil }

    func file(_ name: String, _ text: String = "x") throws { try fx.write(input + "/" + name, Array(text.utf8)) }

    func scanError(_ options: PackInput.Options = PackInput.Options(), of directory: String? = nil,
                   file: StaticString = #filePath, line: UInt = #line) -> PackError? {
        do {
            let scan = try PackInput.scan(directory ?? input, options: options)
            XCTFail("expected a refusal, got \(scan.layers.map(\.displayPath))", file: file, line: line)
            return nil
        } catch {
            return error
        }
    }

    func testSkippedEntriesAreListedWithTheirReason() throws {
        try file("layer-001")
        try file(".hidden")
        XCTAssertEqual(mkdir(input + "/.git", 0o755), 0)
        XCTAssertEqual(mkdir(input + "/sub", 0o755), 0)
        XCTAssertEqual(mkfifo(input + "/fifo", 0o644), 0)
        let scan = try PackInput.scan(input)
        XCTAssertEqual(scan.layers.map(\.displayPath), [input + "/layer-001"])
        XCTAssertEqual(scan.skipped, [
            PackInput.Skipped(path: input + "/.git", reason: "hidden directory"),
            PackInput.Skipped(path: input + "/.hidden", reason: "hidden file"),
            PackInput.Skipped(path: input + "/fifo", reason: "not a regular file (FIFO)"),
            PackInput.Skipped(path: input + "/sub", reason: "directory"),
        ])
    }

    func testSymlinksAreRefusedWithoutTheFlag() throws {
        try file("layer-001")
        XCTAssertEqual(symlink("layer-001", input + "/layer-002"), 0)
        XCTAssertEqual(scanError(), .symlinkRefused(input + "/layer-002", target: "layer-001"))
        XCTAssertEqual(scanError()?.description,
                       "'\(input!)/layer-002': symbolic link (to 'layer-001') refused: links are packed only with --follow-symlinks, and only when they lead to a file inside the input directory")
        // Even a dangling one: without the flag, no link is looked through.
        XCTAssertEqual(unlink(input + "/layer-002"), 0)
        XCTAssertEqual(symlink("nowhere", input + "/layer-002"), 0)
        XCTAssertEqual(scanError(), .symlinkRefused(input + "/layer-002", target: "nowhere"))
    }

    func testFollowedSymlinksStayInsideTheInput() throws {
        try file("layer-001", "one")
        XCTAssertEqual(mkdir(input + "/sub", 0o755), 0)
        try fx.write(input + "/sub/real", Array("deep".utf8))
        XCTAssertEqual(symlink("sub/real", input + "/layer-002"), 0)
        XCTAssertEqual(symlink(input + "/layer-001", input + "/layer-003"), 0) // absolute, still inside
        XCTAssertEqual(symlink("sub", input + "/layer-004"), 0)
        XCTAssertEqual(symlink("nowhere", input + "/layer-005"), 0)
        XCTAssertEqual(symlink("layer-006", input + "/layer-006"), 0)
        let follow = PackInput.Options(followSymlinks: true)
        let scan = try PackInput.scan(input, options: follow)
        let real = try XCTUnwrap(SystemCalls.realPath(input))
        XCTAssertEqual(scan.layers.map(\.id), [1, 2, 3])
        XCTAssertEqual(scan.layers.map(\.displayPath), [input + "/layer-001", input + "/layer-002", input + "/layer-003"])
        // The file read is the resolved target, the one checked to lie inside.
        XCTAssertEqual(scan.layers.map(\.path), [input + "/layer-001", real + "/sub/real", real + "/layer-001"])
        XCTAssertEqual(scan.layers[1].size, 4)
        XCTAssertEqual(scan.skipped, [
            PackInput.Skipped(path: input + "/layer-004", reason: "symlink to a directory"),
            PackInput.Skipped(path: input + "/layer-005", reason: "dangling symlink (to 'nowhere')"),
            PackInput.Skipped(path: input + "/layer-006", reason: "symlink loop"),
            PackInput.Skipped(path: input + "/sub", reason: "directory"),
        ])
        // The packer reads the target, and names the link in what it writes and says.
        let result = try Packer.pack(scan.layers, into: fx.location(3), options: Packer.Options(time: Fixture.time))
        XCTAssertEqual(result.index.layers.map(\.size), [3, 4, 3])

        // Out of the input: refused even when following, however the link is spelt.
        let outside = fx.base + "/temp/outside"
        try fx.write(outside, Array("secret".utf8))
        for (name, target) in [("layer-007", "/etc/hostname"), ("layer-008", "../outside"), ("layer-009", "sub/../../outside")] {
            XCTAssertEqual(symlink(target, input + "/" + name), 0)
            guard case .symlinkOutside(let path, let resolved, let inputReal)? = scanError(follow) else {
                XCTFail("\(name) -> \(target) was not refused"); continue
            }
            XCTAssertEqual(path, input + "/" + name)
            XCTAssertEqual(inputReal, real)
            XCTAssertFalse(resolved.hasPrefix(real + "/"), resolved)
            XCTAssertEqual(unlink(input + "/" + name), 0)
        }
        // A link through another link that leads out is caught on the resolved path.
        XCTAssertEqual(symlink(fx.base + "/temp", input + "/up"), 0)
        XCTAssertEqual(symlink("up/outside", input + "/layer-010"), 0)
        XCTAssertEqual(scanError(follow), .symlinkOutside(input + "/layer-010", target: try XCTUnwrap(SystemCalls.realPath(outside)), input: real))
        // A sibling whose name merely starts like the input's is outside too.
        XCTAssertEqual(unlink(input + "/layer-010"), 0)
        XCTAssertEqual(unlink(input + "/up"), 0)
        XCTAssertEqual(mkdir(input + "-x", 0o755), 0)
        try fx.write(input + "-x/f", Array("f".utf8))
        XCTAssertEqual(symlink("../in-x/f", input + "/layer-011"), 0)
        guard case .symlinkOutside? = scanError(follow) else { return XCTFail("in-x/f counted as inside in/") }
    }

    func testIDsComeFromNamesOrOrderButNeverFromAMix() throws {
        for name in ["layer-007", "layer-1000", "layer-02"] { try file(name) }
        XCTAssertEqual(try PackInput.scan(input).layers.map(\.id), [2, 7, 1000])
        try file("notes.txt")
        XCTAssertEqual(scanError(), .mixedNames(input, named: 3, others: ["notes.txt"]))
        XCTAssertEqual(scanError()?.description,
                       "input '\(input!)': 3 files are named layer-NNN and 1 is not ('notes.txt'), so no numbering fits every file; rename or remove it, or give --renumber to number all files 1, 2, ... in name order")
        // layer-0 and layer-x are not layer names either.
        try file("layer-0")
        try file("layer-x")
        XCTAssertEqual(scanError(), .mixedNames(input, named: 3, others: ["layer-0", "layer-x", "notes.txt"]))
        let renumbered = try PackInput.scan(input, options: PackInput.Options(renumber: true))
        XCTAssertEqual(renumbered.layers.map { String($0.displayPath.split(separator: "/").last ?? "") },
                       ["layer-0", "layer-007", "layer-02", "layer-1000", "layer-x", "notes.txt"])
        XCTAssertEqual(renumbered.layers.map(\.id), [1, 2, 3, 4, 5, 6])
        // No file named layer-NNN: numbered in name order, as before.
        for name in ["layer-007", "layer-1000", "layer-02"] { XCTAssertEqual(unlink(input + "/" + name), 0) }
        XCTAssertEqual(try PackInput.scan(input).layers.map(\.id), [1, 2, 3])
        // Two names for one id.
        for name in ["layer-0", "layer-x", "notes.txt"] { XCTAssertEqual(unlink(input + "/" + name), 0) }
        try file("layer-7")
        try file("layer-007")
        XCTAssertEqual(scanError(), .duplicateID(input + "/layer-007", input + "/layer-7", id: 7))
        XCTAssertEqual(scanError()?.description, "'\(input!)/layer-007' and '\(input!)/layer-7' both name layer 7")
    }

    func testTheInputItselfIsNamedAsTheCaseIs() throws {
        XCTAssertEqual(scanError(of: fx.base + "/nosuch"), .inputMissing(fx.base + "/nosuch"))
        XCTAssertEqual(PackError.inputMissing("nosuch").description, "input 'nosuch' does not exist")
        try fx.write(fx.base + "/plain", [])
        XCTAssertEqual(scanError(of: fx.base + "/plain")?.description, "input '\(fx.base)/plain' is not a directory (it is a regular file)")
        XCTAssertEqual(scanError(of: fx.base + "/plain/x"), .inputMissing(fx.base + "/plain/x"))
        XCTAssertEqual(PackError.inputDenied("locked").description, "input 'locked': permission denied")
        // The input may itself be reached through a link: the user named it.
        XCTAssertEqual(symlink(input, fx.base + "/via"), 0)
        try file("layer-001")
        XCTAssertEqual(try PackInput.scan(fx.base + "/via/").layers.map(\.displayPath), [fx.base + "/via/layer-001"])
        // Root cannot be refused a directory; anyone else can.
        guard geteuid() != 0 else { return }
        XCTAssertEqual(chmod(input, 0), 0)
        defer { chmod(input, 0o755) }
        XCTAssertEqual(scanError(), .inputDenied(input))
    }
}
