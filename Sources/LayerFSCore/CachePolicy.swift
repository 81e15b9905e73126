/// Every caching decision of the mount, in one place.
///
/// The bytes of a mounted generation never change, so the kernel may keep everything: long
/// entry and attribute timeouts, negative entries, page cache kept across opens (no-open
/// support, else keep_cache), directory listings cached. When a dimension does change, the
/// mount tells the kernel explicitly (notify calls), rather than relying on timeouts.
public struct CachePolicy: Sendable {
    /// Seconds the kernel may trust a name → node mapping and a node's attributes.
    public var entryTimeout: Double = 86_400
    public var attributeTimeout: Double = 86_400
    /// Seconds a "no such name" answer may be cached.
    public var negativeTimeout: Double = 86_400
    /// Answer the first read-only OPEN with ENOSYS, so the kernel stops sending OPEN and
    /// RELEASE (two round trips per file) and keeps every file's page cache. Write opens still
    /// answer EROFS; after no-open is on, the mount's `ro` flag refuses them in the kernel.
    public var noOpen = true
    /// Keep a file's page cache across opens (when no-open is off).
    public var keepCache = true
    /// Let the kernel cache directory listings.
    public var cacheDirectories = true
    /// `st_blksize`: the write size `cp` and stdio choose. A writable mount says 1 MiB (its
    /// max_write), so a copy arrives in 1 MiB WRITEs instead of 128 KiB ones.
    public var blockSize = 4096

    public init() {}
}
