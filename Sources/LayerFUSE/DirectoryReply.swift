import CFuse
import Glibc
import LayerFSCore

/// The body of a READDIR or READDIRPLUS reply: entries packed by libfuse's own encoders into a
/// buffer of the size the kernel asked for. Pure (no request, no kernel), so `swift test`
/// checks the bytes the kernel will parse.
struct DirectoryReply: ~Copyable {
    let plus: Bool
    let cache: CachePolicy
    let capacity: Int
    private let buffer: UnsafeMutablePointer<CChar>
    private(set) var used = 0

    init(capacity: Int, plus: Bool, cache: CachePolicy) {
        self.capacity = max(0, capacity)
        self.plus = plus
        self.cache = cache
        buffer = .allocate(capacity: max(1, self.capacity))
    }

    deinit { buffer.deallocate() }

    /// Appends one entry; false (and nothing written) when it does not fit. The core counts a
    /// READDIRPLUS entry as handed out only when this returns true: the kernel takes a lookup
    /// for exactly the entries in the buffer.
    mutating func add(_ item: DirectoryEntry, next: Int) -> Bool {
        let room = capacity - used
        let needed: Int
        // libfuse's encoders ignore the request argument; nil keeps this free of one.
        if plus {
            var e: fuse_entry_param
            if let entry = item.entry {
                e = Reply.entryParameters(entry, cache)
            } else {
                // Node id 0: the kernel lists the name without instantiating it (nor counting).
                e = fuse_entry_param()
                e.attr.st_ino = UInt(truncatingIfNeeded: item.inode.rawValue)
                e.attr.st_mode = item.kind == .file ? S_IFREG : S_IFDIR
            }
            needed = fuse_add_direntry_plus(nil, buffer + used, room, item.name, &e, off_t(next))
        } else {
            var st = Glibc.stat()
            st.st_ino = UInt(truncatingIfNeeded: item.inode.rawValue)
            st.st_mode = item.kind == .file ? S_IFREG : S_IFDIR
            needed = fuse_add_direntry(nil, buffer + used, room, item.name, &st, off_t(next))
        }
        if needed > room { return false }
        used += needed
        return true
    }

    func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        body(UnsafeRawBufferPointer(start: buffer, count: used))
    }
}
