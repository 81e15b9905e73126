import Glibc

/// How owners and modes are shown. By default the volume's own: a layer shows region.mmap's
/// owner and mode, a dimension directory its directory's, as squashfs shows its image's; so a
/// copy (`cp -a`, `rsync -a`) behaves like the original: a user who may write the volume may
/// write and delete the copy. The mount is read-only whatever the write bits say (`ro`).
/// Options replace the owner (`uid=`, `gid=`), the modes (`file_mode=`, `dir_mode=`), or
/// mask them (`umask=`), as sshfs and rclone do.
public struct Presentation: Sendable, Equatable {
    public var uid: UInt32?
    public var gid: UInt32?
    public var fileMode: UInt32?
    public var directoryMode: UInt32?
    public var umask: UInt32 = 0

    public init() {}

    /// Permission bits shown for a file or directory whose volume file has `mode`. Set-id and
    /// sticky bits are never shown: the mount is `nosuid` by default, and they mean nothing here.
    func permissions(_ kind: Attributes.Kind, volumeMode mode: UInt32) -> UInt32 {
        let chosen = (kind == .file ? fileMode : directoryMode) ?? mode
        return chosen & 0o777 & ~umask
    }

    func apply(_ a: Attributes, volumeMode mode: UInt32) -> Attributes {
        var a = a
        a.permissions = permissions(a.kind, volumeMode: mode)
        if let uid { a.uid = uid }
        if let gid { a.gid = gid }
        return a
    }
}
