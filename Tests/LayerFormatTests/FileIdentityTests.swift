import Glibc
import XCTest
@testable import LayerFormat

/// A generation carries the identity of the two files it actually opened, so that a reader
/// can later tell whether the paths still name them.
final class FileIdentityTests: XCTestCase {
    func identity(_ path: String) throws -> FileIdentity {
        var st = stat()
        XCTAssertEqual(stat(path, &st), 0, path)
        return FileIdentity(st)
    }

    func testIdentitiesAreThoseOfTheFilesLoaded() throws {
        let fx = Fixture()
        try fx.pack(2, ["alpha", "beta"])
        let location = fx.location(2)
        let g = try XCTUnwrap(try Generation.load(location))
        XCTAssertEqual(g.regionFile, try identity(location.regionPath))
        XCTAssertEqual(g.indexFile, try identity(location.indexPath))
        XCTAssertEqual(g.regionFile.size, Int64(g.region.size))
        XCTAssertNotEqual(g.regionFile, g.indexFile)
    }

    func testFieldsComeFromStat() throws {
        var st = stat()
        st.st_dev = 0x0803
        st.st_ino = 1_234_567
        st.st_size = 8192
        st.st_mtim = timespec(tv_sec: 1_729_771_200, tv_nsec: 999_999_999)
        XCTAssertEqual(FileIdentity(st), FileIdentity(device: 0x0803, inode: 1_234_567, size: 8192,
                                                       mtimeSeconds: 1_729_771_200, mtimeNanoseconds: 999_999_999))
    }

    /// A pack swaps in new files: the old generation's identities no longer match the paths,
    /// and a fresh load's do.
    func testReplacedFilesHaveOtherIdentities() throws {
        let fx = Fixture()
        try fx.pack(2, ["alpha", "beta"])
        let location = fx.location(2)
        let old = try XCTUnwrap(try Generation.load(location))
        try fx.pack(2, ["alpha", "beta", "gamma"])
        XCTAssertNotEqual(old.regionFile, try identity(location.regionPath))
        XCTAssertNotEqual(old.indexFile, try identity(location.indexPath))
        let new = try XCTUnwrap(try Generation.load(location))
        XCTAssertEqual(new.regionFile, try identity(location.regionPath))
        XCTAssertEqual(new.indexFile, try identity(location.indexPath))
    }

    /// An index handed over in memory was read from no file: its identity matches none.
    func testIndexGivenInMemoryHasNoFileIdentity() throws {
        let fx = Fixture()
        try fx.pack(2, ["alpha"])
        let location = fx.location(2)
        let loaded = try XCTUnwrap(try Generation.load(location))
        let built = try Generation(location: location, region: loaded.region, index: loaded.index)
        XCTAssertEqual(built.regionFile, loaded.regionFile)
        XCTAssertEqual(built.indexFile.inode, 0)
        XCTAssertNotEqual(built.indexFile, try identity(location.indexPath))
    }
}
