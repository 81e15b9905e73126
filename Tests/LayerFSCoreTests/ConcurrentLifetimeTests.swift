import Foundation
import Glibc
import Logging
import Synchronization
import XCTest
@testable import LayerFormat
@testable import LayerFSCore

/// The interleavings a sequential model cannot reach: listings, lookups, reads and forgets on
/// several threads while a writer replaces the dimension and the watcher's refresh swaps
/// generations in. The kernel model is shared; when the threads stop it forgets everything,
/// and then no retired generation may be left and every count must be zero.
final class ConcurrentLifetimeTests: XCTestCase {
    func testListingsLookupsAndForgetsRacingUpdates() throws {
        for bits in [16, 3] { try race(tagBits: bits, updates: 150) }
    }

    func race(tagBits: Int, updates: Int) throws {
        let root = try ModelVolume.scratchRoot()
        defer { SystemCalls.removeTree(root) }
        var volume = ModelVolume(base: root + "/v")
        var disk: [UInt32: LayerContent] = [:]
        for id in 1...UInt32(30) { disk[id] = LayerContent(bytes: "layer \(id) write 0", time: 1_600_000_000) }
        try volume.write(1, disk, fileByFile: false)

        var configuration = FileSystem.Configuration(base: volume.base)
        configuration.nodeTagging = NodeTagging(bits: tagBits)
        var logger = Logger(label: "race")
        logger.logLevel = .critical
        let fs = FileSystem(configuration: configuration, logger: logger)

        let shared = Shared(fs)

        var threads: [@Sendable () -> Void] = []
        for seed in 0..<2 {
            threads.append {
                var random = SplitMix64(seed: UInt64(seed))
                while !shared.stop.load(ordering: .relaxed) {
                    guard let dir = shared.directory() else { continue }
                    var offset = 0
                    while true {
                        let room = 1 + Int(random.next() % 12)
                        var got: [(DirectoryEntry, Int)] = []
                        do {
                            try fs.readDirectory(dir, from: offset, plus: true) { item, next in
                                guard got.count < room else { return false }
                                got.append((item, next))
                                return true
                            }
                        } catch { break }
                        shared.record(got.compactMap(\.0.entry))
                        if got.count < room { break }
                        offset = got[got.count - 1].1
                    }
                }
            }
        }
        threads.append {
            var random = SplitMix64(seed: 7)
            while !shared.stop.load(ordering: .relaxed) {
                guard let dir = shared.directory() else { continue }
                if let e = try? fs.lookup(parent: dir, name: PackInput.fileName(forLayer: UInt32(1 + random.next() % 32))) { shared.record([e]) }
            }
        }
        threads.append {
            var random = SplitMix64(seed: 9)
            while !shared.stop.load(ordering: .relaxed) {
                // Forget and read under the model's lock: the kernel never reads a node it forgot.
                shared.kernel.withLock { k in
                    guard !k.counts.isEmpty else { return }
                    let nodes = Array(k.counts.keys)
                    let node = nodes[Int(random.next() % UInt64(nodes.count))]
                    let generation = k.generationOf[node] ?? 0
                    do {
                        let bytes = try fs.read(node, offset: 0, size: 4096) { String(decoding: $0, as: UTF8.self) }
                        if let before = k.seen[node.rawValue]?[generation], before != bytes {
                            k.problems.append("\(node) generation \(generation) read \"\(bytes)\", earlier \"\(before)\"")
                        }
                        k.seen[node.rawValue, default: [:]][generation] = bytes
                    } catch {
                        k.problems.append("held \(node) unreadable: \(error)")
                    }
                    guard let held = k.counts[node] else { return }
                    let n = min(held, 1 + random.next() % 3)
                    k.counts[node] = held == n ? nil : held - n
                    fs.forget(node, count: n)
                }
            }
        }
        let done = DispatchGroup()
        for body in threads {
            done.enter()
            Thread { body(); done.leave() }.start()
        }
        var random = SplitMix64(seed: 11)
        for w in 1...updates {
            for _ in 0..<(1 + random.next() % 3) {
                let id = UInt32(1 + random.next() % 32)
                disk[id] = random.next() % 4 == 0 ? nil : LayerContent(bytes: "layer \(id) write \(w)", time: 1_600_000_000 + Int64(w))
            }
            try volume.write(1, disk, fileByFile: w % 2 == 0)
            _ = fs.refresh()
        }
        shared.stop.store(true, ordering: .relaxed)
        done.wait()

        let (problems, handedOut, counts) = shared.kernel.withLock { ($0.problems, $0.handedOut, $0.counts) }
        XCTAssertEqual(problems, [], "tag bits \(tagBits)")
        XCTAssertGreaterThan(handedOut, 1000, "the threads did work")
        for (node, n) in counts { fs.forget(node, count: n) }
        _ = fs.refresh()
        let (retired, outstanding, invariants) = fs.slotState(1) { ($0.held.retiredCount, $0.held.outstanding, $0.held.checkInvariants()) } ?? (-1, 0, [])
        XCTAssertEqual(invariants, [])
        XCTAssertEqual(retired, 0, "tag bits \(tagBits): no retired generation once the kernel forgot everything")
        XCTAssertEqual(outstanding, 0)
        print("race (tag bits \(tagBits)): \(updates) updates, \(handedOut) entries handed out; after forgetting: \(retired) retired, \(outstanding) outstanding")
    }

    /// What the racing threads share: the kernel model and the stop flag.
    final class Shared: Sendable {
        struct Kernel {
            var counts: [NodeID: UInt64] = [:]
            /// (node id, generation) -> the bytes first read through it: must never change.
            var seen: [UInt64: [UInt64: String]] = [:]
            var generationOf: [NodeID: UInt64] = [:]
            var problems: [String] = []
            var handedOut = 0
        }

        let fs: FileSystem
        let kernel = Mutex(Kernel())
        let stop = Atomic<Bool>(false)

        init(_ fs: FileSystem) { self.fs = fs }

        func record(_ entries: [Entry]) {
            kernel.withLock { k in
                for e in entries {
                    k.counts[e.node, default: 0] += 1
                    k.generationOf[e.node] = e.generation
                    k.handedOut += 1
                }
            }
        }

        func directory() -> NodeID? { try? fs.lookup(parent: .root, name: "D01").node }
    }
}
