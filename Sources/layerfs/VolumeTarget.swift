import Glibc
import LayerFormat

/// What a path given to `verify` or `info` names: a volume or one dimension directory.
///
/// Found out before anything is read, so that each mistake gets its own message: a path that
/// does not exist, one the user may not read, a layerfs mount (whose tree has no index.json to
/// check), a plain directory. Lumping them together as "not a volume" sent users to
/// `layerfs init` for paths that were only mistyped or unreadable.
enum VolumeTarget {
    case volume(Volume)
    case dimension(DimensionLocation)

    /// A refusal of the path, worded for the user; printed after `layerfs: `.
    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    /// Classifies `path`.
    /// - Parameters:
    ///   - command: the subcommand, for advice such as "verify 'SOURCE' instead".
    ///   - isDefault: the path is the default volume, not one the user typed: the message
    ///     then says where it came from.
    static func resolve(_ path: String, command: String, isDefault: Bool = false) throws(Problem) -> VolumeTarget {
        let quoted = quote(path)
        // The mount table first: a layerfs mount holds no index.json to read, and stat on one
        // whose daemon died fails with ENOTCONN, which says nothing useful.
        if let (mount, inside) = MountTable.layerfsMount(containing: path) {
            let suggestion = inside.isEmpty ? mount.source : mount.source + "/" + sourcePath(ofMountPath: inside)
            if inside.isEmpty {
                throw Problem(description: "\(quoted) is a layerfs mount of \(quote(mount.source)): \(command) \(quote(suggestion)) instead")
            }
            throw Problem(description: "\(quoted) is inside the layerfs mount \(quote(mount.mountpoint)) of \(quote(mount.source)): \(command) \(quote(suggestion)) instead")
        }
        var st = stat()
        if stat(path, &st) != 0 {
            let code = errno
            let origin = isDefault ? " (the default volume: give one, or set $MMAP_BASE_PATH)" : ""
            switch code {
            case ENOENT, ENOTDIR: throw Problem(description: "\(quoted) does not exist" + origin)
            case EACCES: throw Problem(description: "\(quoted): permission denied")
            default: throw Problem(description: "\(quoted): \(String(cString: strerror(code)))")
            }
        }
        guard st.st_mode & S_IFMT == S_IFDIR else {
            throw Problem(description: "\(quoted) is \(describeType(st)), not a volume or a dimension directory")
        }
        // Without read and search permission nothing below can be told apart: an unreadable
        // volume would look like an empty directory.
        if access(path, R_OK | X_OK) != 0 {
            let code = errno
            if code == EACCES { throw Problem(description: "\(quoted): permission denied") }
            throw Problem(description: "\(quoted): \(String(cString: strerror(code)))")
        }
        let volume = Volume(base: path)
        if volume.exists { return .volume(volume) }
        // The name decides whether a directory is a dimension: the name as given (a symlink
        // `D01` to a directory of another name is one), else the name of what it resolves to,
        // so that `cd D01 && layerfs verify .` works.
        let resolved = SystemCalls.realPath(path) ?? path
        if var location = Volume.location(ofDimensionDirectory: path) ?? Volume.location(ofDimensionDirectory: resolved) {
            let given = trimmed(path)
            location.directory = given
            location.displayPath = given
            return .dimension(location)
        }
        let name = resolved.split(separator: "/").last.map(String.init) ?? ""
        if name == "consciousness" || name == "proto" {
            let parent = parentPath(path)
            if Volume(base: parent).exists {
                throw Problem(description: "\(quoted) is the \(name)/ directory of the volume \(quote(parent)): \(command) \(quote(parent)) instead")
            }
        }
        throw Problem(description: "\(quoted) is not a volume (no consciousness/ or proto/) nor a dimension directory (DNN, proto/NAME); "
                      + "`layerfs init \(quoted)` makes it a volume")
    }

    /// The path a mount's `D01/layer-001` or `proto/NAME` has in its source volume: the
    /// dimension directory (a layer has no file of its own there).
    static func sourcePath(ofMountPath inside: String) -> String {
        let parts = inside.split(separator: "/").map(String.init)
        guard let first = parts.first else { return "" }
        if first == "proto" {
            return parts.count >= 2 ? "proto/" + parts[1] : "proto"
        }
        return "consciousness/" + first
    }

    /// Single quotes around a path, as every message of layerfs writes it.
    static func quote(_ path: String) -> String { "'" + path + "'" }

    static func trimmed(_ path: String) -> String {
        var p = path
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        return p
    }

    /// The directory holding `path`, as text: `vol/consciousness` gives `vol`, `.` gives `..`.
    static func parentPath(_ path: String) -> String {
        let p = trimmed(path)
        if p == "." { return ".." }
        guard let slash = p.lastIndex(of: "/") else { return "." }
        return slash == p.startIndex ? "/" : String(p[..<slash])
    }

    static func describeType(_ st: stat) -> String {
        switch st.st_mode & S_IFMT {
        case S_IFREG: return "a regular file"
        case S_IFIFO: return "a FIFO"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        default: return "not a directory"
        }
    }
}

extension MountTable {
    /// The layerfs mount that `path` is, or lies inside, with the rest of the path below its
    /// mountpoint (empty for the mountpoint itself); nil when it is in none. The innermost
    /// mount wins. Symlinks are resolved where they can be; a path that cannot be resolved (a
    /// dead mount answers ENOTCONN) is taken as written.
    static func layerfsMount(containing path: String) -> (mount: Mount, inside: String)? {
        let absolute = SystemCalls.realPath(path) ?? MountTable.absolute(path)
        var best: (mount: Mount, inside: String)?
        for mount in read() where mount.type == "fuse.layerfs" {
            let inside: String
            if absolute == mount.mountpoint {
                inside = ""
            } else if absolute.hasPrefix(mount.mountpoint == "/" ? "/" : mount.mountpoint + "/") {
                inside = String(absolute.dropFirst(mount.mountpoint.count)).trimmingPrefix("/")
            } else {
                continue
            }
            // Later lines of mountinfo are mounted over earlier ones: on a tie the later wins.
            if let current = best, current.mount.mountpoint.count > mount.mountpoint.count { continue }
            best = (mount, inside)
        }
        return best
    }
}

private extension String {
    func trimmingPrefix(_ prefix: Character) -> String {
        var s = Substring(self)
        while s.first == prefix { s = s.dropFirst() }
        return String(s)
    }
}
