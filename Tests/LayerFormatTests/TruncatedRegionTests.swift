import Glibc
import XCTest
@testable import LayerFormat

/// A writer that truncates region.mmap in place (which the spec forbids) while a reader holds
/// it mapped: everything that hashes the region reads it with pread, so the reader reports the
/// file instead of dying of SIGBUS on a mapped page past the new end.
final class TruncatedRegionTests: XCTestCase {
    var fx: Fixture!
    var generation: Generation!

    override func setUpWithError() throws {
        fx = Fixture()
        // Layer 2 spans several 1 MiB reads, so the truncation lands inside a read loop.
        try fx.pack(2, ["alpha", String(repeating: "b", count: 3 << 20), "gamma"])
        generation = try XCTUnwrap(try Generation.load(fx.location(2)))
        XCTAssertTrue(Verifier().checksumProblems(generation).isEmpty)
    }

    override func tearDown() {
        generation = nil
        fx = nil
    }

    func testTruncatedInsideALayer() throws {
        let layer2 = generation.layers[1]
        let cut = layer2.offset + (2 << 20)
        XCTAssertEqual(truncate(fx.location(2).regionPath, off_t(cut)), 0)
        let problems = Verifier().checksumProblems(generation)
        XCTAssertEqual(problems.count, 1, "\(problems)")
        let problem = try XCTUnwrap(problems.first)
        XCTAssertEqual(problem.kind, .unusableFile)
        XCTAssertEqual(problem.file, "consciousness/D02/region.mmap")
        XCTAssertTrue(problem.description.hasPrefix("consciousness/D02/region.mmap: the file ends at byte \(cut), short of the \(generation.region.size) bytes"),
                      problem.description)
        XCTAssertNil(generation.region.safeDigest(offset: layer2.offset, count: layer2.size))
    }

    func testTruncatedToNothing() throws {
        XCTAssertEqual(truncate(fx.location(2).regionPath, 0), 0)
        let problems = Verifier().checksumProblems(generation)
        XCTAssertEqual(problems.map(\.file), ["consciousness/D02/region.mmap"], "\(problems)")
        XCTAssertTrue(problems[0].message.contains("ends at byte 256"), problems[0].message)
    }

    /// The layers ahead of the cut still hash, and a wrong one among them is still reported.
    func testLayersBeforeTheCutAreStillChecked() throws {
        let layer1 = generation.layers[0]
        let region = fx.location(2).regionPath
        let fd = open(region, O_WRONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        XCTAssertEqual(pwrite(fd, "X", 1, off_t(layer1.offset)), 1)
        XCTAssertEqual(ftruncate(fd, off_t(generation.layers[1].offset + 4096)), 0)
        close(fd)
        let problems = Verifier().checksumProblems(generation)
        XCTAssertEqual(problems.count, 2, "\(problems)")
        XCTAssertTrue(problems.contains { $0.file == "consciousness/D02/region.mmap" && $0.kind == .unusableFile })
        XCTAssertTrue(problems.contains { $0.kind == .checksumMismatch && $0.layerID == 1 && $0.file == "consciousness/D02/index.json" })
    }
}
