import Crypto
import Glibc
import CLinux

/// A region.mmap file mapped read-only and shared (MAP_SHARED, PROT_READ): layers are byte
/// ranges of this mapping, served without copying. The mapping lives as long as this object;
/// the descriptor stays open so that safe reads (pread) never touch mapped pages that a
/// misbehaving writer may have truncated (touching those raises SIGBUS).
public final class MappedRegion: @unchecked Sendable {
    // @unchecked: every stored property is immutable after init; the mapped bytes are
    // read-only for this process.
    public let base: UnsafeRawPointer
    public let size: Int
    public let fd: Int32
    public let file: String
    /// File status at open time: owner, mtime, device and inode (to notice replacement).
    public let status: stat
    /// True for a sealed copy of the file in memory (`init(snapshotOf:)`): nothing a writer does
    /// to the file afterwards reaches its readers.
    public let isSnapshot: Bool

    /// Opens and maps a region file. Refuses what is not a regular file (a FIFO is never
    /// opened for blocking), an empty file, and one larger than `maxSize`.
    public init(path: String, display: String, maxSize: UInt64? = nil) throws(FormatError) {
        let (fd, st) = try SystemCalls.openRegular(path, display: display)
        let size = Int(st.st_size)
        if size == 0 {
            close(fd)
            throw FormatError(.unusableFile, file: display, "file is empty (a region has at least its 256-byte header)")
        }
        if let maxSize, UInt64(size) > maxSize {
            close(fd)
            throw FormatError(.tooLarge, file: display, "region is \(size) bytes, over the maximum of \(maxSize) (MMAP_MAX_SIZE / --max-region-size)")
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            let code = errno
            close(fd)
            throw SystemCalls.fail(display, "mmap", code)
        }
        self.base = UnsafeRawPointer(p)
        self.size = size
        self.fd = fd
        self.file = display
        self.status = st
        self.isSnapshot = false
    }

    /// Copies the whole file into a sealed memory file (memfd) and maps that. For Jessy's
    /// legacy regions, which their writer rewrites in place: a mapping of the file itself
    /// would show a reader half of the old bytes and half of the new. The copy is refused when
    /// the file's size or mtime changed while it was read (a writer was at work), so it is one
    /// consistent state of the file, and it stays that state (sealed: nothing can write it)
    /// for as long as a reader holds it. `fd` is the copy's, so everything that reads through
    /// the descriptor (safeRead, verify, import's copy) reads the same bytes; `status` is the
    /// original file's (owner, mode, mtime, identity).
    public init(snapshotOf path: String, display: String, maxSize: UInt64? = nil) throws(FormatError) {
        let (source, st) = try SystemCalls.openRegular(path, display: display)
        defer { close(source) }
        let size = Int(st.st_size)
        if size == 0 { throw FormatError(.unusableFile, file: display, "file is empty") }
        if let maxSize, UInt64(size) > maxSize {
            throw FormatError(.tooLarge, file: display, "region is \(size) bytes, over the maximum of \(maxSize) (MMAP_MAX_SIZE / --max-region-size)")
        }
        let copy = layerfs_memfd_sealed_copy("layerfs-legacy-region")
        guard copy >= 0 else { throw SystemCalls.fail(display, "memfd_create") }
        var ok = false
        defer { if !ok { close(copy) } }
        guard ftruncate(copy, off_t(size)) == 0 else { throw SystemCalls.fail(display, "ftruncate of its copy in memory") }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { buffer.deallocate() }
        var done = 0
        while done < size {
            let n = SystemCalls.retrying { pread(source, buffer.baseAddress, min(buffer.count, size - done), off_t(done)) }
            if n < 0 { throw SystemCalls.fail(display, "read") }
            if n == 0 {
                throw FormatError(.unusableFile, file: display, "the file ended at byte \(done) while being read (it was \(size) bytes): a writer is rewriting it")
            }
            try SystemCalls.writeAll(copy, UnsafeRawBufferPointer(rebasing: buffer[0..<n]), at: UInt64(done), display: display)
            done += n
        }
        var after = stat()
        if fstat(source, &after) != 0 || after.st_size != st.st_size || after.st_mtim.tv_sec != st.st_mtim.tv_sec
            || after.st_mtim.tv_nsec != st.st_mtim.tv_nsec {
            throw FormatError(.unusableFile, file: display, "changed while being read: a writer is rewriting it")
        }
        guard layerfs_seal_readonly(copy) == 0 else { throw SystemCalls.fail(display, "sealing its copy in memory") }
        guard let p = mmap(nil, size, PROT_READ, MAP_SHARED, copy, 0), p != MAP_FAILED else {
            throw SystemCalls.fail(display, "mmap")
        }
        ok = true
        self.base = UnsafeRawPointer(p)
        self.size = size
        self.fd = copy
        self.file = display
        self.status = st
        self.isSnapshot = true
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: base), size)
        close(fd)
    }

    /// The bytes [offset, offset + count). The caller has validated the range.
    public func bytes(offset: UInt64, count: UInt64) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + Int(offset), count: Int(count))
    }

    /// Copies bytes out with pread: safe even if the file was truncated under the mapping.
    public func safeRead(offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        SystemCalls.retrying { pread(fd, buffer.baseAddress, buffer.count, off_t(offset)) }
    }

    /// Why a read of the file stopped short of the bytes asked for.
    public struct ReadFailure: Sendable, CustomStringConvertible {
        /// Where the missing bytes begin.
        public var offset: UInt64
        /// The errno of a failed pread; nil when the file simply ended there.
        public var code: Int32?

        public var description: String {
            if let code { return "read at byte \(offset): \(SystemCalls.errnoText(code))" }
            return "the file ends at byte \(offset)"
        }
    }

    /// Hands bytes [offset, offset + count) to `body` in pieces read with pread through
    /// `buffer`, never through the mapping: a file truncated under us ends the read with a
    /// `ReadFailure` where touching the mapping would raise SIGBUS.
    public func safeRead(offset: UInt64, count: UInt64, through buffer: UnsafeMutableRawBufferPointer,
                         _ body: (UnsafeRawBufferPointer) -> Void) -> ReadFailure? {
        var done: UInt64 = 0
        while done < count {
            let want = Int(min(UInt64(buffer.count), count - done))
            let n = safeRead(offset: offset + done, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]))
            if n < 0 { return ReadFailure(offset: offset + done, code: errno) }
            if n == 0 { return ReadFailure(offset: offset + done, code: nil) }
            body(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            done += UInt64(n)
        }
        return nil
    }

    /// SHA-256 of bytes [offset, offset + count) read with pread, never through the mapping,
    /// so a file truncated under us gives nil instead of SIGBUS.
    public func safeDigest(offset: UInt64, count: UInt64) -> Digest256? {
        var hasher = SHA256()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { buffer.deallocate() }
        if safeRead(offset: offset, count: count, through: buffer, { hasher.update(bufferPointer: $0) }) != nil { return nil }
        return Digest256(hasher.finalize())
    }

    /// Tells the kernel the whole region will be read front to back (verify, pack).
    public func adviseSequential() {
        madvise(UnsafeMutableRawPointer(mutating: base), size, MADV_SEQUENTIAL | MADV_WILLNEED)
    }

    /// The same for reads through the descriptor (`safeRead`): larger readahead.
    public func adviseSequentialReads() {
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
    }
}
