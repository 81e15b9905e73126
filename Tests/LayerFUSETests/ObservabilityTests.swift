import Foundation
import Glibc
import Synchronization
import XCTest
@testable import LayerFormat
@testable import LayerFSCore
@testable import LayerFUSE

/// The binding's counters and access-log pieces, without a kernel: counts from many threads at
/// once, quantiles from the histogram, the first-read filter, trace names to operations.
final class ObservabilityTests: XCTestCase {
    func testCountsFromManyThreadsAreExact() {
        let counters = MountCounters()
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            for i in 0..<10_000 {
                counters.request(.read, slot: 3)
                counters.read(bytes: 4096, nanoseconds: UInt64(1_000 * (i % 100 + 1)), slot: 3)
                if i % 1000 == 0 { counters.error(EIO, slot: t % 2 == 0 ? 3 : 0) }
            }
        }
        let snapshot = counters.snapshot()
        XCTAssertEqual(Set(snapshot.keys), [0, 3])
        let d = snapshot[3]!
        XCTAssertEqual(d.requests[Operation.read.rawValue], 80_000)
        XCTAssertEqual(d.bytesRead, 80_000 * 4096)
        XCTAssertEqual(d.reads, 80_000)
        XCTAssertEqual(d.errors[EIO], 40)
        XCTAssertEqual(snapshot[0]!.errors[EIO], 40)
        XCTAssertEqual(d.latencyMaxNanoseconds, 100_000)
        XCTAssertEqual(d.latencySumNanoseconds, 8 * 100 * (1...100).reduce(0) { $0 + UInt64($1) * 1_000 })
    }

    func testQuantilesAreBucketBoundsCappedByTheMaximum() {
        let counters = MountCounters()
        for _ in 0..<98 { counters.read(bytes: 1, nanoseconds: 8_000, slot: 1) }     // ≤ 10 µs
        counters.read(bytes: 1, nanoseconds: 300_000, slot: 1)                          // ≤ 500 µs
        counters.read(bytes: 1, nanoseconds: 3_000_000_000, slot: 1)                    // +Inf
        let s = counters.snapshot()[1]!
        XCTAssertEqual(s.latencyQuantile(0.5), 0.000_01)
        XCTAssertEqual(s.latencyQuantile(0.99), 0.000_5)
        XCTAssertEqual(s.latencyQuantile(1), 3)
        XCTAssertNil(CounterSnapshot().latencyQuantile(0.5))
    }

    func testSlotsAreFoundFromNodeIDsAndLargeSlotsWork() {
        let counters = MountCounters()
        counters.request(.getattr, slot: NodeID.layer(slot: 65_535, tag: 7, id: 9).slot)
        XCTAssertEqual(counters.snapshot()[65_535]?.requests[Operation.getattr.rawValue], 1)
    }

    func testFirstReadFilterSeesEachPairOnce() {
        let filter = FirstReadFilter()
        XCTAssertTrue(filter.firstTime(pid: 10, node: 1 << 48 | 1))
        XCTAssertFalse(filter.firstTime(pid: 10, node: 1 << 48 | 1))
        XCTAssertTrue(filter.firstTime(pid: 11, node: 1 << 48 | 1))
        // A new version of the layer is a new node id: a new pair.
        XCTAssertTrue(filter.firstTime(pid: 10, node: 1 << 48 | 2 << 32 | 1))
        // Many pairs from many threads: each reported first exactly once.
        let firsts = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for pid in 100..<2100 { if filter.firstTime(pid: pid_t(pid), node: 5) { firsts.wrappingAdd(1, ordering: .relaxed) } }
        }
        XCTAssertEqual(firsts.load(ordering: .relaxed), 2000)
    }

    func testEveryTraceNameIsAnOperation() {
        for name in ["LOOKUP", "FORGET", "BATCH_FORGET", "GETATTR", "OPEN", "READ", "OPENDIR", "READDIR", "READDIRPLUS",
                     "STATFS", "GETXATTR", "LISTXATTR", "SETATTR", "MKNOD", "MKDIR", "UNLINK", "RMDIR", "SYMLINK",
                     "RENAME", "LINK", "WRITE", "CREATE", "SETXATTR", "REMOVEXATTR", "FALLOCATE"] {
            XCTAssertNotEqual(Operation(traceName: name), .other, name)
        }
        XCTAssertEqual(Operation(traceName: "READDIRPLUS").name, "readdirplus")
        XCTAssertEqual(Operation(traceName: "BATCH_FORGET").name, "batch_forget")
    }

    func testAccessLogLinesAreJSONWithMillisecondTimes() throws {
        let line = AccessLog.line("read", [("uid", .integer(7)), ("process", .string("a\"b\n"))])
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        XCTAssertEqual(object?["event"] as? String, "read")
        XCTAssertEqual(object?["process"] as? String, "a\"b\n")
        let time = object?["time"] as? String ?? ""
        XCTAssertNotNil(time.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"#, options: .regularExpression), time)
    }

    func testLineQuotingIsTheIndexWritersQuoting() {
        for text in ["plain", "a\"b\\c", "tab\tnew\nline\r", "\u{1}\u{1f}", "é, 日本, 🙂", ""] {
            var out: [UInt8] = []
            AccessLog.appendQuoted(&out, text)
            XCTAssertEqual(String(decoding: out, as: UTF8.self), JSONText.quote(text))
        }
    }

    func testAccessLogWritesEverythingQueuedAndReopens() throws {
        let dir = NSTemporaryDirectory() + "layerfs-observe-unit-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = try AccessLog(path: dir + "/a.log", capacity: 1_000_000)
        log.start()
        for i in 0..<500 { log.append("{\"n\":\(i)}") }
        while log.written.load(ordering: .relaxed) < 500 { usleep(1000) }
        try FileManager.default.moveItem(atPath: dir + "/a.log", toPath: dir + "/a.log.1")
        log.reopen()
        while !FileManager.default.fileExists(atPath: dir + "/a.log") { usleep(1000) }
        for i in 500..<1000 { log.append("{\"n\":\(i)}") }
        log.stop()
        let text = try String(contentsOfFile: dir + "/a.log.1", encoding: .utf8) + String(contentsOfFile: dir + "/a.log", encoding: .utf8)
        XCTAssertEqual(text, (0..<1000).map { "{\"n\":\($0)}\n" }.joined())
    }

    func testAFullQueueDropsCountsAndSaysSo() throws {
        let dir = NSTemporaryDirectory() + "layerfs-observe-unit2-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Not started: nothing drains the queue of 10.
        let log = try AccessLog(path: dir + "/a.log", capacity: 10)
        for i in 0..<25 { log.append("{\"n\":\(i)}") }
        XCTAssertEqual(log.lostTotal.load(ordering: .relaxed), 15)
        log.start()
        log.stop()
        let lines = try String(contentsOfFile: dir + "/a.log", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 11)
        XCTAssertTrue(lines.last?.contains("\"event\":\"lost\",\"lines\":15") ?? false, String(lines.last ?? ""))
    }
}
