import ArgumentParser
import Foundation
import Glibc

/// The kernel's list of mounts (/proc/self/mountinfo), read without touching any of them: a
/// FUSE mount whose daemon died answers ENOTCONN to stat, but is still listed here.
struct MountTable {
    struct Mount {
        var device: String      // "major:minor"
        var mountpoint: String
        var type: String        // e.g. "fuse.layerfs"
        var source: String
    }

    static func read() -> [Mount] {
        guard let f = fopen("/proc/self/mountinfo", "r") else { return [] }
        defer { fclose(f) }
        var mounts: [Mount] = []
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, f) > 0, let line {
            let text = String(cString: line).trimmingCharacters(in: .newlines)
            let halves = text.components(separatedBy: " - ")
            guard halves.count >= 2 else { continue }
            let left = halves[0].split(separator: " ").map(String.init)
            let right = halves[1].split(separator: " ").map(String.init)
            guard left.count >= 5, right.count >= 2 else { continue }
            mounts.append(Mount(device: left[2], mountpoint: unescape(left[4]), type: right[0], source: unescape(right[1])))
        }
        return mounts
    }

    /// mountinfo writes space, tab, newline and backslash as \ooo.
    static func unescape(_ s: String) -> String {
        var out: [UInt8] = []
        let b = Array(s.utf8)
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "\\"), i + 3 < b.count, let v = UInt8(String(decoding: b[i + 1...i + 3], as: UTF8.self), radix: 8) {
                out.append(v); i += 4
            } else {
                out.append(b[i]); i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// "major:minor" as st_dev encodes it (glibc's makedev).
    static func deviceNumber(_ text: String) -> UInt64? {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let major = UInt64(parts[0]), let minor = UInt64(parts[1]) else { return nil }
        return (major & 0xFFFF_F000) << 32 | (major & 0xFFF) << 8 | (minor & 0xFFFF_FF00) << 12 | (minor & 0xFF)
    }

    static func mount(at path: String) -> Mount? {
        read().last { $0.mountpoint == path }
    }

    /// An absolute, normalised path without touching the filesystem at `path` itself (which
    /// may be a dead mount).
    /// The layerfs mount at `given` (as the user typed it), or a `layerfs:` line saying why
    /// there is none and exit status 1: for the commands that act on a mount (unmount, status).
    static func layerfsMount(at given: String) throws -> Mount {
        let path = absolute(given)
        guard let mount = mount(at: path) else { throw Settings.refusal("'\(given)' is not mounted") }
        guard mount.type == "fuse.layerfs" else { throw Settings.refusal("'\(given)' is a \(mount.type) mount, not layerfs") }
        return mount
    }

    static func absolute(_ path: String) -> String {
        var full = path
        if !path.hasPrefix("/") {
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX))
            let cwd = getcwd(&buffer, buffer.count).map { _ in String(cString: buffer) } ?? "/"
            full = cwd + "/" + path
        }
        var parts: [Substring] = []
        for part in full.split(separator: "/") {
            if part == "." || part.isEmpty { continue }
            if part == ".." { _ = parts.popLast(); continue }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }
}

