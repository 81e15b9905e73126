import Foundation
import Glibc
import LayerFSCore
import LayerFUSE
import Logging

/// How `layerfs status` reaches a mount's daemon: a Unix socket named after the mount's
/// device number, outside the mount. Chosen over a hidden control file inside the mount
/// because a socket is in no listing of the mount (ls, find and rsync -a cannot meet it), has
/// no page cache in the way (a read-only mount answers OPEN with ENOSYS, so a control file
/// could not be direct_io and would show stale figures), and tells the daemon who asks
/// (SO_PEERCRED) without trusting a path permission alone.
///
/// Where: root's daemons in /run/layerfs/, a user's in $XDG_RUNTIME_DIR/layerfs/ (else
/// /tmp/layerfs-UID/, made 0700). The socket is 0666 in a directory others may search (root's);
/// the daemon answers only root, its own user, and (with allow_other) users who may read the
/// mount's root directory as the mount shows it; anyone else gets a refusal and nothing else.
enum ControlSocket {
    static func directory(forUID uid: uid_t, environment: [String: String]) -> String {
        if uid == 0 { return "/run/layerfs" }
        if let runtime = environment["XDG_RUNTIME_DIR"], runtime.hasPrefix("/") { return runtime + "/layerfs" }
        return "/tmp/layerfs-\(uid)"
    }

    /// `dev-0-52.sock` for the mount with st_dev 0:52 (its "major:minor" in mountinfo).
    static func name(device: String) -> String { "dev-" + device.replacingOccurrences(of: ":", with: "-") + ".sock" }

    /// Every place a client looks for a mount's socket: root's directory, the caller's, and
    /// that of the user who made the mount (mountinfo's user_id).
    static func candidates(device: String, mountUID: uid_t?) -> [String] {
        let environment = ProcessInfo.processInfo.environment
        var dirs = ["/run/layerfs", directory(forUID: getuid(), environment: environment)]
        if let mountUID, mountUID != 0 { dirs += ["/run/user/\(mountUID)/layerfs", "/tmp/layerfs-\(mountUID)"] }
        var seen = Set<String>()
        return dirs.filter { seen.insert($0).inserted }.map { $0 + "/" + name(device: device) }
    }

    static func address(_ path: String) -> sockaddr_un? {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        return addr
    }

    // MARK: - The daemon's side

    /// struct ucred (SO_PEERCRED), which Swift's Glibc hides behind _GNU_SOURCE: the same
    /// three 32-bit fields in the same order.
    struct PeerCredentials {
        var pid: pid_t = 0
        var uid: uid_t = 0
        var gid: gid_t = 0
    }

    /// Listens on the socket of the mount with `device` and answers each connection with
    /// `document()` (or a refusal). Returns the socket's path, to be removed at unmount.
    static func serve(device: String, logger: Logger, mayRead: @escaping @Sendable (PeerCredentials) -> Bool,
                      document: @escaping @Sendable () -> String) -> String? {
        let dir = directory(forUID: geteuid(), environment: ProcessInfo.processInfo.environment)
        if mkdir(dir, geteuid() == 0 ? 0o755 : 0o700) != 0 && errno != EEXIST {
            logger.warning("status socket not created: cannot make '\(dir)': \(String(cString: strerror(errno)))")
            return nil
        }
        // The directory must be ours and writable by no one else: a directory someone else
        // made in /tmp could otherwise hold (and replace) the socket.
        var st = stat()
        guard lstat(dir, &st) == 0, st.st_mode & S_IFMT == S_IFDIR, st.st_uid == geteuid(), st.st_mode & 0o022 == 0 else {
            logger.warning("status socket not created: '\(dir)' is not a directory of this user writable by it alone")
            return nil
        }
        let path = dir + "/" + name(device: device)
        guard var addr = address(path) else { logger.warning("status socket path too long: \(path)"); return nil }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { logger.warning("status socket: \(String(cString: strerror(errno)))"); return nil }
        // A socket left by a daemon that died on this device number: the device is ours now.
        unlink(path)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, chmod(path, 0o666) == 0, listen(fd, 16) == 0 else {
            logger.warning("status socket '\(path)' not served: \(String(cString: strerror(errno)))")
            close(fd)
            return nil
        }
        BackgroundThread.start {
            Signals.blockAll()
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 {
                    if errno == EINTR || errno == ECONNABORTED { continue }
                    return
                }
                var cred = PeerCredentials()
                var length = socklen_t(MemoryLayout<PeerCredentials>.size)
                let known = getsockopt(client, SOL_SOCKET, SO_PEERCRED, &cred, &length) == 0
                let answer = known && mayRead(cred) ? document()
                    : "refused: uid \(cred.uid) may not read this mount\n"
                var bytes = Array(answer.utf8)
                var done = 0
                while done < bytes.count {
                    let n = bytes.withUnsafeMutableBytes { send(client, $0.baseAddress! + done, $0.count - done, Int32(MSG_NOSIGNAL)) }
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }
                    done += n
                }
                close(client)
            }
        }
        return path
    }

    /// Whether the user `cred` names may read the mount: root, the daemon's own user, and with
    /// allow_other whoever the root directory's shown owner, group and mode let read it.
    static func mayRead(_ cred: PeerCredentials, allowOther: Bool, root: () -> Attributes?) -> Bool {
        // Root may read anything on the machine anyway (the daemon's memory included).
        if cred.uid == 0 { return true }
        if cred.uid == geteuid() { return true }
        guard allowOther, let a = root() else { return false }
        if cred.uid == a.uid { return a.permissions & 0o400 != 0 }
        if groups(of: cred).contains(a.gid) { return a.permissions & 0o040 != 0 }
        return a.permissions & 0o004 != 0
    }

    /// The caller's groups, from /proc/PID/status (SO_PEERCRED gives only the primary one).
    static func groups(of cred: PeerCredentials) -> Set<gid_t> {
        var out: Set<gid_t> = [cred.gid]
        guard let text = try? String(contentsOfFile: "/proc/\(cred.pid)/status", encoding: .utf8) else { return out }
        for line in text.split(separator: "\n") where line.hasPrefix("Groups:") {
            for g in line.dropFirst(7).split(separator: " ") { if let v = gid_t(String(g)) { out.insert(v) } }
        }
        return out
    }

    // MARK: - The client's side

    enum Answer {
        case document(String)
        case refused(String)
        case unreachable(String)
    }

    /// Connects to the first socket of `candidates` that exists and reads the whole answer.
    static func ask(_ candidates: [String]) -> Answer {
        var problem = "no status socket (the daemon predates `layerfs status`, or died)"
        for path in candidates {
            guard access(path, F_OK) == 0, var addr = address(path) else { continue }
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { return .unreachable(String(cString: strerror(errno))) }
            defer { close(fd) }
            let connected = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard connected == 0 else {
                problem = "'\(path)': \(String(cString: strerror(errno)))"
                continue
            }
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var data: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n > 0 { data += buffer[0..<n]; continue }
                if n < 0 && errno == EINTR { continue }
                if n < 0 { return .unreachable("'\(path)': \(String(cString: strerror(errno)))") }
                break
            }
            let text = String(decoding: data, as: UTF8.self)
            if text.hasPrefix("refused: ") { return .refused(String(text.dropFirst(9)).trimmingCharacters(in: .newlines)) }
            return .document(text)
        }
        return .unreachable(problem)
    }
}
