import Glibc
import Logging
import XCTest
@testable import LayerFormat
@testable import LayerFSCore

/// The filesystem core without a kernel: the operations as plain method calls on volumes the
/// tests write with the real writer.
final class CoreTests: XCTestCase {
    var base = ""

    override func setUpWithError() throws {
        base = try ScratchVolume.make("core", sample: true)
    }

    override func tearDown() { SystemCalls.removeTree(base) }

    func makeFS() -> FileSystem {
        FileSystem(configuration: FileSystem.Configuration(base: base), logger: Logger(label: "test"))
    }

    func pack(_ id: UInt32, _ contents: [String], fileByFile: Bool = false) throws {
        let input = base + "/temp/in\(UInt32.random(in: 0...UInt32.max))"
        XCTAssertEqual(mkdir(input, 0o755), 0)
        defer { SystemCalls.removeTree(input) }
        var sources: [PackLayerSource] = []
        for (i, text) in contents.enumerated() {
            let path = input + "/f\(i)"
            try Packer.writeFile(path, Array(text.utf8), display: path)
            sources.append(PackLayerSource(id: UInt32(i + 1), path: path, size: UInt64(text.utf8.count), keywords: ["k,\(i)"],
                                           updatedAt: Timestamp(seconds: 1_700_000_000)))
        }
        var options = Packer.Options(time: Timestamp(seconds: 1_700_000_100))
        options.fileByFile = fileByFile
        let name = DimensionLocation.directoryName(for: id)
        _ = try Packer.pack(sources, into: DimensionLocation(kind: .consciousness(id), directory: base + "/consciousness/" + name, displayPath: name), options: options)
    }

    func names(_ fs: FileSystem, _ node: NodeID) throws -> [String] {
        var out: [String] = []
        try fs.readDirectory(node, from: 0, plus: false) { entry, _ in out.append(entry.name); return true }
        return out
    }

    func bytes(_ fs: FileSystem, _ node: NodeID) throws -> String {
        try fs.read(node, offset: 0, size: 1 << 20) { String(decoding: $0, as: UTF8.self) }
    }

    func testTreeAndLookups() throws {
        let fs = makeFS()
        XCTAssertEqual(try names(fs, .root), ["."] + [".."] + (1...14).map { DimensionLocation.directoryName(for: UInt32($0)) })
        let d1 = try fs.lookup(parent: .root, name: "D01")
        XCTAssertEqual(d1.attributes.kind, .directory)
        XCTAssertEqual(d1.attributes.permissions, mode(base + "/consciousness/D01"), "the directory's own mode")
        XCTAssertEqual(try names(fs, d1.node), [".", "..", "layer-001", "layer-002", "layer-003"])
        let layer = try fs.lookup(parent: d1.node, name: "layer-002")
        XCTAssertEqual(layer.attributes.permissions, mode(base + "/consciousness/D01/region.mmap"), "region.mmap's mode")
        XCTAssertEqual(layer.attributes.inode, InodeNumber(rawValue: 1 << 32 | 2))
        XCTAssertEqual(layer.attributes.blocks, (layer.attributes.size + 511) / 512)
        XCTAssertTrue(try bytes(fs, layer.node).hasPrefix("# Emotion (D01), layer 2"))
        XCTAssertThrowsError(try fs.lookup(parent: d1.node, name: "layer-2")) { XCTAssertEqual($0 as? FSError, .notFound) }
        XCTAssertThrowsError(try fs.lookup(parent: .root, name: "temp")) { XCTAssertEqual($0 as? FSError, .notFound) }
        XCTAssertThrowsError(try fs.lookup(parent: .root, name: "proto")) { XCTAssertEqual($0 as? FSError, .notFound) }
        XCTAssertThrowsError(try fs.lookup(parent: layer.node, name: "x")) { XCTAssertEqual($0 as? FSError, .notDirectory) }
        XCTAssertThrowsError(try fs.attributes(NodeID(rawValue: 999 << 48))) { XCTAssertEqual($0 as? FSError, .notFound) }
    }

    func mode(_ path: String) -> UInt32 {
        var st = stat()
        XCTAssertEqual(stat(path, &st), 0)
        return st.st_mode & 0o777
    }

    func testOwnersAndModesFollowTheVolumeUnlessOverridden() throws {
        XCTAssertEqual(chmod(base + "/consciousness/D01/region.mmap", 0o640), 0)
        XCTAssertEqual(chmod(base + "/consciousness/D01", 0o750), 0)
        let own = makeFS()
        let d1 = try own.lookup(parent: .root, name: "D01")
        XCTAssertEqual(d1.attributes.permissions, 0o750)
        XCTAssertEqual(try own.lookup(parent: d1.node, name: "layer-001").attributes.permissions, 0o640)
        XCTAssertEqual(try own.attributes(.root).permissions, mode(base))

        var configuration = FileSystem.Configuration(base: base)
        configuration.presentation.uid = 1234
        configuration.presentation.gid = 5678
        configuration.presentation.fileMode = 0o4664
        configuration.presentation.umask = 0o027
        let shown = FileSystem(configuration: configuration, logger: Logger(label: "test"))
        let d = try shown.lookup(parent: .root, name: "D01")
        let l = try shown.lookup(parent: d.node, name: "layer-001")
        XCTAssertEqual(l.attributes.permissions, 0o640, "file_mode 4664 without set-id bits, masked by umask 027")
        XCTAssertEqual(d.attributes.permissions, 0o750, "dir mode is the directory's, masked")
        XCTAssertEqual([l.attributes.uid, l.attributes.gid, d.attributes.uid, d.attributes.gid], [1234, 5678, 1234, 5678])
    }

    func testReadsAreClippedToTheLayer() throws {
        let fs = makeFS()
        try pack(15, ["0123456789"])
        let fs2 = makeFS()
        let d = try fs2.lookup(parent: .root, name: "D15")
        let l = try fs2.lookup(parent: d.node, name: "layer-001")
        XCTAssertEqual(try fs2.read(l.node, offset: 3, size: 4) { String(decoding: $0, as: UTF8.self) }, "3456")
        XCTAssertEqual(try fs2.read(l.node, offset: 8, size: 100) { String(decoding: $0, as: UTF8.self) }, "89")
        XCTAssertEqual(try fs2.read(l.node, offset: 10, size: 100) { $0.count }, 0)
        XCTAssertEqual(try fs2.read(l.node, offset: 1 << 40, size: 100) { $0.count }, 0)
        _ = fs
    }

    func testWritesAreRefused() throws {
        let fs = makeFS()
        let d = try fs.lookup(parent: .root, name: "D01")
        let l = try fs.lookup(parent: d.node, name: "layer-001")
        for flags in [O_WRONLY, O_RDWR, O_RDONLY | O_TRUNC] {
            XCTAssertThrowsError(try fs.open(l.node, flags: flags)) { XCTAssertEqual($0 as? FSError, .readOnly) }
        }
        XCTAssertNoThrow(try fs.open(l.node, flags: O_RDONLY))
        XCTAssertThrowsError(try fs.open(d.node, flags: O_RDONLY)) { XCTAssertEqual($0 as? FSError, .isDirectory) }
        XCTAssertEqual(FSError.readOnly.errno, EROFS)
        XCTAssertEqual(FSError.noAttribute.errno, ENODATA)
    }

    func testExtendedAttributes() throws {
        try pack(15, ["a", "b"])
        let fs = makeFS()
        let d = try fs.lookup(parent: .root, name: "D15")
        let l = try fs.lookup(parent: d.node, name: "layer-002")
        func text(_ node: NodeID, _ name: String) throws -> String { String(decoding: try fs.extendedAttribute(node, name: name), as: UTF8.self) }
        XCTAssertEqual(try text(l.node, "user.keywords"), "k\\,1")
        XCTAssertEqual(try text(l.node, "user.frequency"), "1.0")
        XCTAssertEqual(try text(l.node, "user.layer_id"), "2")
        XCTAssertEqual(try text(l.node, "user.checksum"), Array("b".utf8).withUnsafeBytes { Digest256.sha256($0) }.checksumString)
        XCTAssertEqual(try text(d.node, "user.dimension_name"), "D15")
        XCTAssertEqual(try text(d.node, "user.layer_count"), "2")
        XCTAssertThrowsError(try fs.extendedAttribute(l.node, name: "security.selinux")) { XCTAssertEqual($0 as? FSError, .notSupported) }
        XCTAssertThrowsError(try fs.extendedAttribute(l.node, name: "user.nope")) { XCTAssertEqual($0 as? FSError, .noAttribute) }
        let list = String(decoding: try fs.extendedAttributeNames(l.node), as: UTF8.self)
        XCTAssertEqual(list, "user.checksum\0user.layer_id\0user.frequency\0user.keywords\0")
    }

    func testBrokenDimensionDoesNotAffectOthers() throws {
        let region = base + "/consciousness/D02/region.mmap"
        let fd = open(region, O_WRONLY)
        XCTAssertEqual(pwrite(fd, "XXXX", 4, 0), 4)
        close(fd)
        let fs = makeFS()
        let d2 = try fs.lookup(parent: .root, name: "D02")
        XCTAssertEqual(try names(fs, d2.node), [".", ".."])
        let error = String(decoding: try fs.extendedAttribute(d2.node, name: "user.error"), as: UTF8.self)
        XCTAssertTrue(error.hasPrefix("D02/region.mmap: header.magic:") || error.contains("consciousness/D02/region.mmap: header.magic"), error)
        let d1 = try fs.lookup(parent: .root, name: "D01")
        XCTAssertEqual(try names(fs, d1.node).count, 5)
    }

    func testDimensionsLoadOnFirstAccessOnly() throws {
        let fs = makeFS()
        _ = try names(fs, .root)
        let loaded = fs.directory.withLock { $0.slots }.filter { if case .unloaded = $0.withState({ $0.phase }) { false } else { true } }
        XCTAssertEqual(loaded.count, 0, "listing the root loads nothing")
        _ = try fs.lookup(parent: .root, name: "D03")
        XCTAssertEqual(fs.directory.withLock { $0.slots }.filter { if case .loaded = $0.withState({ $0.phase }) { true } else { false } }.count, 1)
    }

    func testUpdateGivesChangedLayersNewNodesAndKeepsOldBytesForHolders() throws {
        try pack(15, ["same", "old"])
        let fs = makeFS()
        let d = try fs.lookup(parent: .root, name: "D15")
        let same = try fs.lookup(parent: d.node, name: "layer-001")
        let old = try fs.lookup(parent: d.node, name: "layer-002")
        XCTAssertEqual(fs.refresh(), [], "nothing changed")
        try pack(15, ["same", "new!", "added"])
        let changes = fs.refresh()
        XCTAssertTrue(changes.contains(.entry(parent: d.node, name: "layer-002")))
        XCTAssertTrue(changes.contains(.entry(parent: d.node, name: "layer-003")))
        XCTAssertFalse(changes.contains(.entry(parent: d.node, name: "layer-001")), "unchanged layer keeps its node")
        XCTAssertTrue(changes.contains(.directory(d.node)))
        // The holder of the old node still reads the old bytes; a new lookup gets the new ones.
        XCTAssertEqual(try bytes(fs, old.node), "old")
        let new = try fs.lookup(parent: d.node, name: "layer-002")
        XCTAssertNotEqual(new.node, old.node)
        XCTAssertEqual(new.attributes.inode, old.attributes.inode, "st_ino is stable")
        XCTAssertEqual(try bytes(fs, new.node), "new!")
        XCTAssertEqual(try fs.lookup(parent: d.node, name: "layer-001").node, same.node)
        // The old generation goes once the kernel forgets the old node.
        let slot = try fs.slot(d.node.slot)
        XCTAssertEqual(slot.withState { $0.held.retiredCount }, 1)
        fs.forget(old.node, count: 1)
        XCTAssertEqual(slot.withState { $0.held.retiredCount }, 0)
        XCTAssertThrowsError(try fs.attributes(old.node)) { XCTAssertEqual($0 as? FSError, .notFound) }
    }

    func testHalfWayUpdateKeepsServingTheOldGeneration() throws {
        try pack(15, ["one"])
        let fs = makeFS()
        let d = try fs.lookup(parent: .root, name: "D15")
        let l = try fs.lookup(parent: d.node, name: "layer-001")
        // The new region without its index: not one generation.
        try pack(16, ["two, longer"])
        XCTAssertEqual(rename(base + "/consciousness/D16/region.mmap", base + "/consciousness/D15/region.mmap"), 0)
        XCTAssertEqual(fs.refresh().filter { if case .entry(let parent, _) = $0 { parent == d.node } else { false } }, [])
        XCTAssertEqual(try bytes(fs, l.node), "one")
        XCTAssertTrue(String(decoding: try fs.extendedAttribute(d.node, name: "user.error"), as: UTF8.self).contains("newest files not served"))
    }

    func testInPlaceModificationBreaksTheGeneration() throws {
        try pack(15, ["content"])
        let fs = makeFS()
        let d = try fs.lookup(parent: .root, name: "D15")
        let l = try fs.lookup(parent: d.node, name: "layer-001")
        XCTAssertEqual(try bytes(fs, l.node), "content")
        usleep(20_000)
        let fd = open(base + "/consciousness/D15/region.mmap", O_WRONLY)
        XCTAssertEqual(pwrite(fd, "X", 1, 4096), 1)
        close(fd)
        _ = fs.refresh()
        XCTAssertThrowsError(try bytes(fs, l.node)) { XCTAssertEqual($0 as? FSError, .io) }
        try pack(15, ["fixed"])
        _ = fs.refresh()
        XCTAssertEqual(try bytes(fs, try fs.lookup(parent: d.node, name: "layer-001").node), "fixed")
    }

    func testVerifyReadsCatchesCorruptBytes() throws {
        try pack(15, ["content"])
        let fd = open(base + "/consciousness/D15/region.mmap", O_WRONLY)
        XCTAssertEqual(pwrite(fd, "X", 1, 4096), 1)
        close(fd)
        var configuration = FileSystem.Configuration(base: base)
        configuration.verifyReads = true
        let fs = FileSystem(configuration: configuration, logger: Logger(label: "test"))
        let d = try fs.lookup(parent: .root, name: "D15")
        let l = try fs.lookup(parent: d.node, name: "layer-001")
        XCTAssertThrowsError(try bytes(fs, l.node)) { XCTAssertEqual($0 as? FSError, .io) }
        let plain = makeFS()
        let node = try plain.lookup(parent: try plain.lookup(parent: .root, name: "D15").node, name: "layer-001").node
        XCTAssertEqual(try bytes(plain, node), "Xontent", "without --verify-reads the bytes are served")
    }

    func testDimensionsAppearAndGo() throws {
        let fs = makeFS()
        try pack(20, ["x"])
        let changes = fs.refresh()
        XCTAssertTrue(changes.contains(.entry(parent: .root, name: "D20")))
        XCTAssertNoThrow(try fs.lookup(parent: .root, name: "D20"))
        SystemCalls.removeTree(base + "/consciousness/D20")
        XCTAssertTrue(fs.refresh().contains(.entry(parent: .root, name: "D20")))
        XCTAssertThrowsError(try fs.lookup(parent: .root, name: "D20")) { XCTAssertEqual($0 as? FSError, .notFound) }
    }
}
