import Foundation
import Glibc
import XCTest
@testable import LayerFormat

/// Spec rules 4-6: one writer at a time, a bounded wait, the holder named.
final class WriterLockTests: XCTestCase {
    func testLockFileBesideTheDimensionHoldsTheHolderWhileHeld() throws {
        let fx = Fixture()
        let location = fx.location(5)
        XCTAssertEqual(WriterLock.path(for: location), fx.base + "/consciousness/.D05.lock")
        let lock = try WriterLock.acquire(location, wait: 0)
        var st = stat()
        XCTAssertEqual(stat(lock.path, &st), 0)
        XCTAssertEqual(st.st_mode & 0o7777, 0o644)
        let line = String(decoding: try fx.read(lock.path), as: UTF8.self)
        XCTAssertEqual(line, "pid \(getpid()) host \(LockHolder.hostName())\n")
        XCTAssertEqual(LockHolder(parsing: line), LockHolder.current)
        lock.release()
        // Released: emptied, never removed.
        XCTAssertEqual(try fx.read(lock.path), [])
        XCTAssertNil(WriterLock.staleHolder(ofLockFile: lock.path))
        // Not a dimension, nor a leftover.
        XCTAssertEqual(fx.volume.dimensions().count, 14)
        XCTAssertEqual(fx.volume.leftoverPackDirectories(), [])
    }

    func testASecondWriterWaitsThenNamesTheHolder() throws {
        let fx = Fixture()
        let first = try WriterLock.acquire(fx.location(5), wait: 0)
        let start = WriterLock.monotonicNow()
        XCTAssertThrowsError(try WriterLock.acquire(fx.location(5), wait: 0.3)) { error in
            guard let error = error as? WriterLockError, case .busy(let dimension, let lock, let holder, let waited) = error else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(dimension, "consciousness/D05")
            XCTAssertEqual(lock, fx.base + "/consciousness/.D05.lock")
            XCTAssertEqual(holder, LockHolder.current)
            XCTAssertEqual(waited, 0.3)
            XCTAssertEqual(error.description,
                           "consciousness/D05 is being written by pid \(getpid()) on host \(LockHolder.hostName()) (lock '\(fx.base)/consciousness/.D05.lock'); waited 0.3 s")
        }
        XCTAssertGreaterThanOrEqual(WriterLock.monotonicNow() - start, 0.3)
        // The waiter that gave up left the holder's line alone: the next waiter names it too.
        let line = try String(contentsOfFile: WriterLock.path(for: fx.location(5)), encoding: .utf8)
        XCTAssertEqual(line.trimmingCharacters(in: .newlines), LockHolder.current.line.trimmingCharacters(in: .newlines))
        // Other dimensions have locks of their own.
        XCTAssertNoThrow(try WriterLock.acquire(fx.location(6), wait: 0).release())
        // A shared (dry-run) lock waits for the writer too.
        XCTAssertThrowsError(try WriterLock.acquireShared(fx.location(5), wait: 0))
        first.release()
        let shared = try XCTUnwrap(try WriterLock.acquireShared(fx.location(5), wait: 0))
        XCTAssertThrowsError(try WriterLock.acquire(fx.location(5), wait: 0), "a writer waits for a dry run's reading")
        shared.release()
        XCTAssertNoThrow(try WriterLock.acquire(fx.location(5), wait: 0).release())
        XCTAssertNil(try WriterLock.acquireShared(fx.location(77), wait: 0), "no lock file: nothing to wait for, nothing created")
        XCTAssertNil(SystemCalls.fileStatus(WriterLock.path(for: fx.location(77))))
    }

    func testTheWaitEndsWhenTheHolderLetsGo() throws {
        let fx = Fixture()
        let first = try WriterLock.acquire(fx.location(5), wait: 0)
        let released = DispatchSemaphore(value: 0)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.2) {
            first.release()
            released.signal()
        }
        let second = try WriterLock.acquire(fx.location(5), wait: 10)
        released.wait()
        XCTAssertEqual(String(decoding: try fx.read(second.path), as: UTF8.self), LockHolder.current.line)
    }

    func testAnotherProcessHoldingTheLockIsNamedByItsPid() throws {
        let fx = Fixture()
        let path = WriterLock.path(for: fx.location(7))
        // flock(1) writes no holder line: the kernel's list of locks names it.
        guard access("/usr/bin/flock", X_OK) == 0 else { throw XCTSkip("no flock(1)") }
        // -o: only flock(1) itself holds the lock, so killing it lets go at once.
        let pid = try spawn(["/usr/bin/flock", "-o", path, "sleep", "10"])
        defer { kill(pid, SIGKILL); var status: Int32 = 0; waitpid(pid, &status, 0) }
        // Until flock(1) has it.
        var held = false
        for _ in 0..<200 where !held {
            do { try WriterLock.acquire(fx.location(7), wait: 0).release(); usleep(10_000) } catch { held = true }
        }
        XCTAssertTrue(held)
        XCTAssertThrowsError(try WriterLock.acquire(fx.location(7), wait: 0.1)) { error in
            guard case .busy(_, _, let who, _)? = error as? WriterLockError else { return XCTFail("\(error)") }
            XCTAssertEqual(who, LockHolder(pid: pid, host: LockHolder.hostName()))
        }
        // A holder line that names another host is believed: its pid cannot be checked here.
        let fd = open(path, O_WRONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        XCTAssertEqual(pwrite(fd, "pid 1234 host elsewhere\n", 24, 0), 24)
        close(fd)
        XCTAssertThrowsError(try WriterLock.acquire(fx.location(7), wait: 0)) { error in
            XCTAssertEqual((error as? WriterLockError)?.description,
                           "consciousness/D07 is being written by pid 1234 on host elsewhere (lock '\(path)'); waited 0 s")
        }
    }

    func testStaleHolderIsAWriterThatDiedNeverOneThatHoldsOrLetGo() throws {
        let fx = Fixture()
        let path = WriterLock.path(for: fx.location(3))
        XCTAssertNil(WriterLock.staleHolder(ofLockFile: path), "absent")
        try fx.write(path, Array("pid 999999999 host \(LockHolder.hostName())\n".utf8))
        XCTAssertEqual(WriterLock.staleHolder(ofLockFile: path), LockHolder(pid: 999_999_999, host: LockHolder.hostName()))
        try fx.write(path, Array("pid \(getpid()) host \(LockHolder.hostName())\n".utf8))
        XCTAssertNil(WriterLock.staleHolder(ofLockFile: path), "a live process of this host")
        try fx.write(path, Array("pid 1234 host elsewhere\n".utf8))
        XCTAssertEqual(WriterLock.staleHolder(ofLockFile: path), LockHolder(pid: 1234, host: "elsewhere"), "not held: whoever wrote it is gone")
        let lock = try WriterLock.acquire(fx.location(3), wait: 0)
        XCTAssertNil(WriterLock.staleHolder(ofLockFile: path), "held")
        lock.release()
        XCTAssertNil(WriterLock.staleHolder(ofLockFile: path), "released cleanly")
        // The check took the lock for an instant only.
        XCTAssertNoThrow(try WriterLock.acquire(fx.location(3), wait: 0).release())
    }

    func testVerifyNotesAStaleLockWithoutFailingAndReportsAnUpdatesLeftover() throws {
        let fx = Fixture()
        try fx.pack(5, ["a"])
        let path = WriterLock.path(for: fx.location(5))
        try fx.write(path, Array("pid 999999999 host \(LockHolder.hostName())\n".utf8))
        var report = Verifier().verify(volume: fx.volume)
        XCTAssertTrue(report.isClean, "a stale lock is no problem")
        XCTAssertEqual(report.notes.map(\.description), [
            "consciousness/.D05.lock: note: names pid 999999999 on host \(LockHolder.hostName()) as its writer, but no one holds it: that writer stopped before it finished (harmless; the dimension is as the last complete write left it, and the lock file stays)",
        ])
        XCTAssertEqual(Verifier().verify(dimension: fx.location(5)).notes.map(\.file), [path])
        XCTAssertEqual(try fx.read(path), Array("pid 999999999 host \(LockHolder.hostName())\n".utf8), "left alone")
        // Held by a live writer: nothing to say.
        let lock = try WriterLock.acquire(fx.location(5), wait: 0)
        XCTAssertEqual(Verifier().verify(volume: fx.volume).notes, [])
        lock.release()
        XCTAssertEqual(Verifier().verify(volume: fx.volume).notes, [], "released cleanly")

        XCTAssertEqual(mkdir(fx.base + "/proto/.draft.update-1f", 0o755), 0)
        report = Verifier().verify(volume: fx.volume)
        XCTAssertEqual(report.problems.map(\.description), ["proto/.draft.update-1f: leftover of an interrupted update (safe to remove once no update is running)"])
    }

    func testHolderLinesOfOtherProducers() {
        XCTAssertEqual(LockHolder(parsing: "1234 h\n"), LockHolder(pid: 1234, host: "h"))
        XCTAssertEqual(LockHolder(parsing: "1234@h"), LockHolder(pid: 1234, host: "h"))
        XCTAssertEqual(LockHolder(parsing: "1234"), LockHolder(pid: 1234, host: nil))
        XCTAssertNil(LockHolder(parsing: ""))
        XCTAssertNil(LockHolder(parsing: "\n"))
        XCTAssertEqual(LockHolder(pid: 1234, host: nil).description, "pid 1234")
    }

    func testALinkOrAFifoAtTheLockIsRefusedNotFollowed() throws {
        let fx = Fixture()
        let victim = fx.base + "/temp/victim"
        try fx.write(victim, Array("keep".utf8))
        XCTAssertEqual(symlink(victim, WriterLock.path(for: fx.location(4))), 0)
        XCTAssertThrowsError(try WriterLock.acquire(fx.location(4), wait: 0)) { error in
            guard case .unusable? = error as? WriterLockError else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(try fx.read(victim), Array("keep".utf8))
        XCTAssertEqual(mkfifo(WriterLock.path(for: fx.location(6)), 0o644), 0)
        XCTAssertThrowsError(try WriterLock.acquire(fx.location(6), wait: 0)) { error in
            XCTAssertTrue("\(error)".contains("not a regular file"), "\(error)")
        }
    }

    /// posix_spawn, not Foundation's Process, whose waitUntilExit also waits for the
    /// grandchild (`sleep`) that flock(1) leaves running.
    func spawn(_ arguments: [String]) throws -> pid_t {
        var pid: pid_t = 0
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        let rc = posix_spawn(&pid, arguments[0], nil, nil, &argv, environ)
        guard rc == 0 else { throw XCTSkip("cannot run \(arguments[0]): \(String(cString: strerror(rc)))") }
        return pid
    }
}
