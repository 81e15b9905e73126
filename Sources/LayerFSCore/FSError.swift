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
        }
    }
}
