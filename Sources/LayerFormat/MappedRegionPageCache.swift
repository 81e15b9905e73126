import Glibc

/// What to do with a region's own page-cache pages once their bytes have been served through
/// the mount: the reader's copy then sits in the FUSE file's page cache, and the region's
/// pages are a second copy of the same bytes.
public enum ServedPagePolicy: String, Sendable, CaseIterable {
    /// Keep them (the kernel reclaims them like any clean page under pressure).
    case keep
    /// Unmap them from the daemon (madvise MADV_DONTNEED) and drop them from the page cache
    /// (posix_fadvise POSIX_FADV_DONTNEED), a whole 2 MiB block at a time once every layer
    /// byte in it was served (the mount's `ServedPageLedger`). fadvise alone does nothing
    /// here: the kernel skips pages that are mapped, and serving through the mapping maps
    /// every page it touches.
    case drop
    /// madvise MADV_PAGEOUT on the whole pages of each range served, at once: the kernel
    /// reclaims them itself (one call), but not the parts of large folios outside the range
    /// (~37 % of a 256 MiB layer stayed, measured).
    case pageout
}

extension MappedRegion {
    /// The page size, asked once.
    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Applies `policy` to the whole pages inside [offset, offset + count): only pages every
    /// byte of which was served (a page shared with a neighbouring layer, or the header, is
    /// kept), plus the file's last partial page when the range reaches the end.
    ///
    /// Safe at any moment: the pages are clean and the file never changes under a served
    /// generation, so another thread still copying from them (a READ in flight) or a later
    /// read simply faults them back in from the file. The cost of dropping is only that: a
    /// re-read that misses the FUSE page cache reads the region from disk again.
    public func release(offset: UInt64, count: UInt64, policy: ServedPagePolicy) {
        guard policy != .keep, count > 0 else { return }
        let page = UInt64(MappedRegion.pageSize)
        let start = (offset + page - 1) / page * page
        var end = (offset + count) / page * page
        if offset + count >= UInt64(size) { end = (UInt64(size) + page - 1) / page * page }
        guard end > start, start < UInt64(size) else { return }
        let address = UnsafeMutableRawPointer(mutating: base + Int(start))
        let length = Int(end - start)
        switch policy {
        case .keep:
            return
        case .drop:
            // MAP_SHARED, read-only, file-backed: MADV_DONTNEED only removes this process's
            // page-table entries; the next touch refaults from the page cache or the file.
            madvise(address, length, MADV_DONTNEED)
            _ = posix_fadvise(fd, off_t(start), off_t(length), POSIX_FADV_DONTNEED)
        case .pageout:
            madvise(address, length, MADV_PAGEOUT)
        }
    }
}
