import Glibc

/// The one error type of the filesystem core. Every operation throws only this; the FUSE
/// binding maps it to an errno in one place (`errno`), so which errno each operation can
/// answer is visible here and in docs/SEMANTICS.md.
public enum FSError: Error, Equatable, Sendable {
    /// No such name, or a node id the table does not know.
    case notFound
    /// Any attempt to change the filesystem.
    case readOnly
    /// The attribute is not set on this node.
    case noAttribute
    /// An attribute namespace this filesystem does not have (security.*, system.*, trusted.*).
    case notSupported
    /// The caller's buffer is too small for the answer.
    case range
    case notDirectory
    case isDirectory
    /// The bytes cannot be served (region truncated or overwritten under the mount, or a
    /// failed `--verify-reads` check).
    case io
    // Writable mounts only (see docs/SEMANTICS.md, "Writable mounts").
    /// A name a dimension cannot hold, a value an attribute cannot take.
    case invalid
    /// Links, symlinks, device nodes, chmod, chown.
    case permission
    /// A rename across dimensions.
    case crossDevice
    case exists
    case notEmpty
    case noSpace
    /// Over the region size limit (MMAP_MAX_SIZE / max_region_size).
    case tooLarge
    /// Another writer held the dimension's writer lock for longer than the commit waits.
    case busy
    /// A file handle this mount did not give out (or not for writing).
    case badHandle

    /// The case for an errno a system call set (staging files): ENOSPC and EFBIG as such,
    /// anything unexpected EIO.
    public init(errno code: Int32) {
        switch code {
        case ENOSPC, EDQUOT: self = .noSpace
        case EFBIG: self = .tooLarge
        case ENOENT: self = .notFound
        default: self = .io
        }
    }

    public var errno: Int32 {
        switch self {
        case .notFound: return ENOENT
        case .readOnly: return EROFS
        case .noAttribute: return ENODATA
        case .notSupported: return EOPNOTSUPP
        case .range: return ERANGE
        case .notDirectory: return ENOTDIR
        case .isDirectory: return EISDIR
        case .io: return EIO
        case .invalid: return EINVAL
        case .permission: return EPERM
        case .crossDevice: return EXDEV
        case .exists: return EEXIST
        case .notEmpty: return ENOTEMPTY
        case .noSpace: return ENOSPC
        case .tooLarge: return EFBIG
        case .busy: return EBUSY
        case .badHandle: return EBADF
        }
    }
}
