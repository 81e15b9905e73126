import Glibc
import CLinux

/// Thin, typed wrappers over the few system calls the format layer needs. Each returns a
/// `FormatError` naming the file, with the errno text, and retries EINTR in one place.
public enum SystemCalls {
    /// realpath(3): the absolute path with every symlink, `.` and `..` resolved; nil when it fails
    /// (errno says why).
    public static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    static func errnoText(_ code: Int32 = errno) -> String {
        String(cString: strerror(code))
    }

    static func fail(_ file: String, _ what: String, _ code: Int32 = errno) -> FormatError {
        FormatError(.system, file: file, "\(what): \(errnoText(code))")
    }

    static func retrying(_ body: () -> Int) -> Int {
        while true {
            let r = body()
            if r == -1 && errno == EINTR { continue }
            return r
        }
    }

    static func fileStatus(_ path: String) -> stat? {
        var st = stat()
        return lstat(path, &st) == 0 ? st : nil
    }

    /// stat(2), following symlinks; nil when it fails.
    static func followStatus(_ path: String) -> stat? {
        var st = stat()
        return stat(path, &st) == 0 ? st : nil
    }

    static func isDirectory(_ st: stat) -> Bool { st.st_mode & S_IFMT == S_IFDIR }
    static func isRegular(_ st: stat) -> Bool { st.st_mode & S_IFMT == S_IFREG }

    static func describeType(_ st: stat) -> String {
        switch st.st_mode & S_IFMT {
        case S_IFREG: return "a regular file"
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        case S_IFLNK: return "a symbolic link"
        default: return "not a regular file"
        }
    }

    /// Opens a file that must be a regular file, without ever blocking on a FIFO (O_NONBLOCK).
    /// Symlinks are followed, as a user would expect of a plain directory of files; the type
    /// check is on the target. With `followSymlinks: false` a link as the last component is
    /// refused (O_NOFOLLOW), for callers that have already decided which links to follow.
    static func openRegular(_ path: String, display: String, followSymlinks: Bool = true) throws(FormatError) -> (fd: Int32, stat: stat) {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | (followSymlinks ? 0 : O_NOFOLLOW))
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { throw FormatError(.unusableFile, file: display, "file is missing") }
            if code == ELOOP && !followSymlinks { throw FormatError(.unusableFile, file: display, "is a symbolic link, not followed") }
            throw FormatError(.unusableFile, file: display, "cannot open: \(errnoText(code))")
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let code = errno
            close(fd)
            throw FormatError(.unusableFile, file: display, "cannot stat: \(errnoText(code))")
        }
        guard isRegular(st) else {
            close(fd)
            throw FormatError(.unusableFile, file: display, "is \(describeType(st)), not a regular file")
        }
        // Back to blocking reads now that we know it is a regular file.
        _ = fcntl(fd, F_SETFL, 0)
        return (fd, st)
    }

    /// Reads a whole regular file.
    static func readFile(_ path: String, display: String, limit: Int = Int.max) throws(FormatError) -> (bytes: [UInt8], stat: stat) {
        let (fd, st) = try openRegular(path, display: display)
        defer { close(fd) }
        let size = Int(st.st_size)
        guard size <= limit else { throw FormatError(.tooLarge, file: display, "file is \(size) bytes, over the limit of \(limit)") }
        var out = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = out.withUnsafeMutableBytes { buf in
                retrying { pread(fd, buf.baseAddress! + done, size - done, off_t(done)) }
            }
            if n < 0 { throw fail(display, "read") }
            if n == 0 { out.removeSubrange(done...); break }
            done += n
        }
        return (out, st)
    }

    /// Reads a file to its end by read(2), for /proc files, whose size says 0; nil when it
    /// cannot be read.
    static func readToEnd(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { b in retrying { read(fd, b.baseAddress, b.count) } }
            if n < 0 { return nil }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, at offset: UInt64, display: String) throws(FormatError) {
        var done = 0
        while done < buffer.count {
            let n = retrying { pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done)) }
            if n < 0 { throw fail(display, "write") }
            done += n
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], at offset: UInt64, display: String) throws(FormatError) {
        let result = bytes.withUnsafeBytes { (b) -> FormatError? in
            do throws(FormatError) { try writeAll(fd, b, at: offset, display: display); return nil } catch { return error }
        }
        if let result { throw result }
    }

    static func fsyncPath(_ path: String, display: String) throws(FormatError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw fail(display, "open for fsync") }
        defer { close(fd) }
        if fsync(fd) != 0 { throw fail(display, "fsync") }
    }

    /// An errno value as an Error, for results that must say why they failed.
    struct ErrorNumber: Error, Equatable {
        var value: Int32
    }

    /// listDirectory, saying why it failed: callers that report to the user need to tell
    /// "permission denied" from other failures.
    static func listDirectoryReportingErrno(_ path: String) -> Result<[String], ErrorNumber> {
        guard let dir = opendir(path) else { return .failure(ErrorNumber(value: errno)) }
        closedir(dir)
        guard let names = listDirectory(path) else { return .failure(ErrorNumber(value: errno)) }
        return .success(names)
    }

    static func listDirectory(_ path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Reads an extended attribute's value as text; nil when absent or unsupported.
    static func getXattr(_ path: String, _ name: String) -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { getxattr(path, name, $0.baseAddress, $0.count) }
            if n >= 0 { return String(decoding: buffer[0..<n], as: UTF8.self) }
            if errno == ERANGE {
                let size = getxattr(path, name, nil, 0)
                if size < 0 { return nil }
                buffer = [UInt8](repeating: 0, count: size + 1)
                continue
            }
            return nil
        }
    }

    /// Removes a directory tree (only what a pack left: regular files and directories).
    static func removeTree(_ path: String) {
        if let names = listDirectory(path) {
            for name in names {
                let child = path + "/" + name
                if let st = fileStatus(child), isDirectory(st) { removeTree(child) } else { unlink(child) }
            }
        }
        rmdir(path)
    }
}
