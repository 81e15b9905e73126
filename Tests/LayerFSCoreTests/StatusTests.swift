import Glibc
import Logging
import Synchronization
import XCTest
@testable import LayerFormat
@testable import LayerFSCore

/// What `layerfs status` reads from the core: loads taken and refused, the generation events
/// the access log gets, retired generations the kernel still holds.
extension CoreTests {
    func testStatusCountsLoadsRejectionsAndHeldGenerations() throws {
        try pack(15, ["one", "two"])
        let events = Mutex<[String]>([])
        var configuration = FileSystem.Configuration(base: base)
        configuration.generationEvents = { event in
            let text: String
            switch event.outcome {
            case .served(let generation, let layers): text = "\(event.dimension) served \(layers) \(generation.prefix(7))"
            case .rejected: text = "\(event.dimension) rejected"
            }
            events.withLock { $0.append(text) }
        }
        let fs = FileSystem(configuration: configuration, logger: Logger(label: "test"))
        func d15() -> DimensionStatus { fs.dimensionStatuses().first { $0.name == "D15" }! }
        XCTAssertEqual(d15().phase, "unloaded")
        XCTAssertEqual(d15().history.loaded, 0)

        let d = try fs.lookup(parent: .root, name: "D15")
        let l = try fs.lookup(parent: d.node, name: "layer-001")
        XCTAssertEqual(d15().phase, "loaded")
        XCTAssertEqual(d15().layers, 2)
        XCTAssertEqual(d15().bytes, 6)
        XCTAssertEqual(d15().history.loaded, 1)
        XCTAssertEqual(d15().lookupsOutstanding, 1)
        XCTAssertNotNil(d15().history.lastChange)
        XCTAssertEqual(fs.describeLayer(l.node)?.layer, 1)
        XCTAssertEqual(fs.describeLayer(l.node)?.dimension, "consciousness/D15")
        XCTAssertEqual(fs.describeLayer(l.node)?.generation, d15().generation)

        // A new generation while the kernel holds layer-001 of the old one: retired but held.
        try pack(15, ["uno", "two", "three"])
        _ = fs.refresh()
        XCTAssertEqual(d15().history.loaded, 2)
        XCTAssertEqual(d15().retiredHeld, 1)
        fs.forget(l.node, count: 1)
        XCTAssertEqual(d15().retiredHeld, 0)
        XCTAssertEqual(d15().lookupsOutstanding, 0)

        // A region without its index: refused, counted, its reason shown; still served.
        try pack(16, ["other"])
        XCTAssertEqual(rename(base + "/consciousness/D16/region.mmap", base + "/consciousness/D15/region.mmap"), 0)
        _ = fs.refresh()
        XCTAssertEqual(d15().history.rejected, 1)
        XCTAssertEqual(d15().phase, "loaded")
        XCTAssertNotNil(d15().error)
        let lines = events.withLock { $0 }
        XCTAssertEqual(lines.count, 3, "\(lines)")
        XCTAssertTrue(lines[0].hasPrefix("consciousness/D15 served 2 sha256:"), lines[0])
        XCTAssertTrue(lines[1].hasPrefix("consciousness/D15 served 3 sha256:"), lines[1])
        XCTAssertEqual(lines[2], "consciousness/D15 rejected")
    }
}
