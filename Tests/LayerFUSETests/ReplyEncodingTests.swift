import CFuse
import Glibc
import XCTest
@testable import LayerFormat
@testable import LayerFSCore
@testable import LayerFUSE

/// The binding's pure parts, without a kernel: the bytes of READDIR and READDIRPLUS replies as
/// the kernel parses them (struct fuse_dirent / fuse_direntplus of the FUSE protocol), the
/// entry parameters, the xattr size protocol and statfs.
final class ReplyEncodingTests: XCTestCase {
    /// One parsed entry of a reply buffer.
    struct Parsed: Equatable {
        var name: String, offset: UInt64, ino: UInt64, type: UInt32
        var nodeID: UInt64 = 0, generation: UInt64 = 0, mode: UInt32 = 0, size: UInt64 = 0, mtime: UInt64 = 0
    }

    /// The kernel's side: walks a buffer of fuse_dirent (24 bytes + name, 8-aligned), each
    /// preceded in READDIRPLUS by a fuse_entry_out (128 bytes: nodeid, generation, two
    /// timeouts and their nanoseconds, then fuse_attr).
    func parse(_ bytes: UnsafeRawBufferPointer, plus: Bool) -> [Parsed] {
        var out: [Parsed] = []
        var at = 0
        func u64(_ o: Int) -> UInt64 { bytes.loadUnaligned(fromByteOffset: o, as: UInt64.self) }
        func u32(_ o: Int) -> UInt32 { bytes.loadUnaligned(fromByteOffset: o, as: UInt32.self) }
        while at < bytes.count {
            var entry = Parsed(name: "", offset: 0, ino: 0, type: 0)
            if plus {
                entry.nodeID = u64(at)
                entry.generation = u64(at + 8)
                let attr = at + 40
                entry.size = u64(attr + 8)
                entry.mtime = u64(attr + 32)
                entry.mode = u32(attr + 60)
                at += 128
            }
            entry.ino = u64(at)
            entry.offset = u64(at + 8)
            let length = Int(u32(at + 16))
            entry.type = u32(at + 20)
            entry.name = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[(at + 24)..<(at + 24 + length)]), as: UTF8.self)
            at += (24 + length + 7) & ~7
            out.append(entry)
        }
        return out
    }

    func layerEntry(_ id: UInt32, generation: UInt64 = 3) -> DirectoryEntry {
        let inode = InodeNumber.layer(key: 1, id: id)
        let attributes = Attributes(inode: inode, kind: .file, permissions: 0o444, links: 1, size: 100 + UInt64(id), uid: 0, gid: 0,
                                    time: Timestamp(seconds: 1_700_000_000))
        return DirectoryEntry(name: PackInput.fileName(forLayer: id), inode: inode, kind: .file,
                              entry: Entry(node: .layer(slot: 1, tag: 7, id: id), generation: generation, attributes: attributes))
    }

    func testReaddirplusCarriesNodeGenerationAndAttributes() {
        var reply = DirectoryReply(capacity: 4096, plus: true, cache: CachePolicy())
        XCTAssertTrue(reply.add(DirectoryEntry(name: ".", inode: .root, kind: .directory, entry: nil), next: 1))
        XCTAssertTrue(reply.add(layerEntry(1), next: 3))
        XCTAssertTrue(reply.add(layerEntry(1000, generation: 1 << 31), next: 1002))
        let parsed = reply.withBytes { parse($0, plus: true) }
        XCTAssertEqual(parsed.map(\.name), [".", "layer-001", "layer-1000"])
        XCTAssertEqual(parsed.map(\.offset), [1, 3, 1002])
        XCTAssertEqual(parsed[0].nodeID, 0, "no entry: node id 0, the kernel does not instantiate (or count) it")
        XCTAssertEqual(parsed[1].nodeID, NodeID.layer(slot: 1, tag: 7, id: 1).rawValue)
        XCTAssertEqual(parsed[1].generation, 3)
        XCTAssertEqual(parsed[2].generation, 1 << 31)
        XCTAssertEqual(parsed[1].ino, InodeNumber.layer(key: 1, id: 1).rawValue)
        XCTAssertEqual(parsed[1].mode, 0o100444, "S_IFREG | 0444")
        XCTAssertEqual(parsed[1].size, 101)
        XCTAssertEqual(parsed[1].mtime, 1_700_000_000)
        XCTAssertEqual(parsed[1].type, UInt32(DT_REG))
        XCTAssertEqual(parsed[0].type, UInt32(DT_DIR))
    }

    func testShortBufferTakesWholeEntriesOnly() {
        // Room for one READDIRPLUS entry (128 + 24 + 9 -> 168 bytes) but not two.
        var reply = DirectoryReply(capacity: 200, plus: true, cache: CachePolicy())
        XCTAssertTrue(reply.add(layerEntry(1), next: 3))
        XCTAssertFalse(reply.add(layerEntry(2), next: 4), "an entry that does not fit is refused")
        XCTAssertEqual(reply.used, 168)
        XCTAssertEqual(reply.withBytes { parse($0, plus: true) }.map(\.name), ["layer-001"])
        var empty = DirectoryReply(capacity: 0, plus: false, cache: CachePolicy())
        XCTAssertFalse(empty.add(layerEntry(1), next: 3))
        XCTAssertEqual(empty.used, 0)
    }

    func testReaddirHasNamesInodesAndOffsetsOnly() {
        var reply = DirectoryReply(capacity: 4096, plus: false, cache: CachePolicy())
        for id in [1, 2, 30] as [UInt32] { XCTAssertTrue(reply.add(layerEntry(id), next: Int(id) + 2)) }
        let parsed = reply.withBytes { parse($0, plus: false) }
        XCTAssertEqual(parsed.map(\.name), ["layer-001", "layer-002", "layer-030"])
        XCTAssertEqual(parsed.map(\.offset), [3, 4, 32])
        XCTAssertEqual(parsed.map(\.ino), [1, 2, 30].map { InodeNumber.layer(key: 1, id: $0).rawValue })
    }

    func testEntryParameters() {
        var cache = CachePolicy()
        cache.entryTimeout = 5
        cache.attributeTimeout = 7
        guard let entry = layerEntry(9, generation: 42).entry else { return XCTFail("entry") }
        let e = Reply.entryParameters(entry, cache)
        XCTAssertEqual(e.ino, entry.node.rawValue)
        XCTAssertEqual(e.generation, 42)
        XCTAssertEqual(e.entry_timeout, 5)
        XCTAssertEqual(e.attr_timeout, 7)
        XCTAssertEqual(e.attr.st_size, 109)
        XCTAssertEqual(e.attr.st_mode, 0o100444)
        XCTAssertEqual(e.attr.st_blocks, 1)
    }

    func testExtendedAttributeSizeProtocol() {
        XCTAssertEqual(Reply.extendedAttributeAnswer(count: 10, size: 0), .length(10))
        XCTAssertEqual(Reply.extendedAttributeAnswer(count: 10, size: 9), .error(ERANGE))
        XCTAssertEqual(Reply.extendedAttributeAnswer(count: 10, size: 10), .value)
        XCTAssertEqual(Reply.extendedAttributeAnswer(count: 0, size: 0), .length(0))
        XCTAssertEqual(Reply.extendedAttributeAnswer(count: 65_536, size: 65_536), .value)
        XCTAssertEqual(Reply.extendedAttributeAnswer(count: 65_537, size: 0), .error(E2BIG), "the kernel cannot pass it")
    }

    func testStatfs() {
        let st = Reply.fileSystemStatus(Statistics(blocks: 12, files: 34))
        XCTAssertEqual(st.f_bsize, 4096)
        XCTAssertEqual(st.f_frsize, 4096)
        XCTAssertEqual(st.f_blocks, 12)
        XCTAssertEqual(st.f_bfree, 0)
        XCTAssertEqual(st.f_bavail, 0)
        XCTAssertEqual(st.f_files, 34)
        XCTAssertEqual(st.f_ffree, 0)
        XCTAssertEqual(st.f_namemax, 255)
        XCTAssertEqual(st.f_flag & UInt(ST_RDONLY), UInt(ST_RDONLY))
    }
}
