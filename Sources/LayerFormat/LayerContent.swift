import Crypto
import Glibc

/// The new bytes of one layer in an update: a file, opened when the update is prepared, or
/// bytes in memory (what `layerfs update` read from stdin). Opening at once means that a
/// missing or unreadable file refuses the update before anything is locked or written, and
/// that the bytes written later are those of the file that was checked.
public final class LayerContent: @unchecked Sendable {
    // @unchecked: immutable after init; the descriptor is only read with pread, which
    // carries its own offset, so concurrent reads cannot disturb each other.
    enum Source {
        case file(Int32)
        case bytes([UInt8])
    }

    let source: Source
    /// How the user named the bytes, for messages: the path as given, or `stdin`.
    public let display: String
    /// The size when opened; a file that grows or shrinks before it is copied is refused.
    public let size: UInt64

    /// Opens `path`, following a symbolic link (the user named the file), refusing anything
    /// but a regular file without ever blocking on a FIFO.
    public static func open(_ path: String, display: String? = nil) throws(UpdateError) -> LayerContent {
        let shown = display ?? path
        do {
            let (fd, st) = try SystemCalls.openRegular(path, display: shown)
            return LayerContent(source: .file(fd), display: shown, size: UInt64(st.st_size))
        } catch {
            var st = stat()
            if stat(path, &st) != 0 {
                if errno == ENOENT || errno == ENOTDIR { throw .input(shown, problem: "does not exist") }
                throw .input(shown, problem: "cannot be examined: \(SystemCalls.errnoText())")
            }
            if !SystemCalls.isRegular(st) { throw .input(shown, problem: "is \(SystemCalls.describeType(st)), not a regular file") }
            throw .input(shown, problem: error.message)
        }
    }

    /// The first `size` bytes of an open file (a writable mount's staging file): the
    /// descriptor is duplicated, so the caller keeps its own. Nil when dup fails.
    public static func descriptor(_ fd: Int32, size: UInt64, display: String) -> LayerContent? {
        let own = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard own >= 0 else { return nil }
        return LayerContent(source: .file(own), display: display, size: size)
    }

    public init(bytes: [UInt8], display: String) {
        self.source = .bytes(bytes)
        self.display = display
        self.size = UInt64(bytes.count)
    }

    private init(source: Source, display: String, size: UInt64) {
        self.source = source
        self.display = display
        self.size = size
    }

    deinit {
        if case .file(let fd) = source { close(fd) }
    }

    /// Hands the bytes to `body` in pieces of at most `buffer.count`, from the start, and
    /// checks that there were exactly `size` of them.
    func read(through buffer: UnsafeMutableRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws(FormatError) -> Void) throws(FormatError) {
        switch source {
        case .bytes(let bytes):
            let failure = bytes.withUnsafeBytes { all -> FormatError? in
                var done = 0
                while done < all.count {
                    let n = min(buffer.count, all.count - done)
                    do throws(FormatError) { try body(UnsafeRawBufferPointer(rebasing: all[done..<done + n])) } catch { return error }
                    done += n
                }
                return nil
            }
            if let failure { throw failure }
        case .file(let fd):
            var done: UInt64 = 0
            while true {
                let n = SystemCalls.retrying { pread(fd, buffer.baseAddress, buffer.count, off_t(done)) }
                if n < 0 { throw SystemCalls.fail(display, "read") }
                if n == 0 { break }
                guard done + UInt64(n) <= size else { throw changed(more: true) }
                try body(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                done += UInt64(n)
            }
            guard done == size else { throw changed(more: false) }
        }
    }

    private func changed(more: Bool) -> FormatError {
        FormatError(.invalidValue, file: display, field: "size",
                    "file changed while being read (it had \(size) bytes when opened, now \(more ? "more" : "fewer"))")
    }

    /// SHA-256 of the bytes (for a dry run, which writes nothing).
    func digest() throws(FormatError) -> Digest256 {
        var hasher = SHA256()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { buffer.deallocate() }
        try read(through: buffer) { hasher.update(bufferPointer: $0) }
        return Digest256(hasher.finalize())
    }
}
