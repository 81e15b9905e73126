import Glibc

/// Where a dimension lives in a volume and what it is called.
public struct DimensionLocation: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        /// consciousness/DNN; the id is NN.
        case consciousness(UInt32)
        /// proto/NAME; dimension_id 0.
        case proto(String)
    }

    public var kind: Kind
    /// Absolute or caller-relative path of the dimension directory.
    public var directory: String
    /// Path relative to the volume base, used in messages: `consciousness/D03`.
    public var displayPath: String

    /// The name the mount shows: `D03`, or the proto NAME.
    public var name: String {
        switch kind {
        case .consciousness(let id): return DimensionLocation.directoryName(for: id)
        case .proto(let name): return name
        }
    }

    /// The dimension_id the header and the index must carry.
    public var expectedID: UInt32 {
        if case .consciousness(let id) = kind { return id }
        return 0
    }

    public var regionPath: String { directory + "/region.mmap" }
    public var indexPath: String { directory + "/index.json" }

    public init(kind: Kind, directory: String, displayPath: String) {
        self.kind = kind; self.directory = directory; self.displayPath = displayPath
    }

    /// "D" + the id, at least two digits.
    public static func directoryName(for id: UInt32) -> String {
        id < 10 ? "D0\(id)" : "D\(id)"
    }

    /// Parses `DNN` (at least two digits, id ≥ 1); nil for anything else.
    public static func consciousnessID(fromDirectoryName name: String) -> UInt32? {
        let b = Array(name.utf8)
        guard b.count >= 3, b[0] == UInt8(ascii: "D"),
              b.dropFirst().allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let id = UInt32(String(decoding: b.dropFirst(), as: UTF8.self)), id >= 1
        else { return nil }
        // D05 and D005 would both be id 5: only the canonical spelling is a dimension.
        guard directoryName(for: id) == name else { return nil }
        return id
    }

    /// A proto NAME: 1-64 of [A-Za-z0-9._-], not starting with '.'.
    public static func isValidProtoName(_ name: String) -> Bool {
        let b = Array(name.utf8)
        guard (1...64).contains(b.count), b[0] != UInt8(ascii: ".") else { return false }
        return b.allSatisfy { c in
            (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
                || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: ".") || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
        }
    }

    /// The canonical names of dimensions 1-14.
    public static let canonicalNames = [
        "Emotion", "Cognition", "Intention", "Social", "Temporal", "Philosophical", "Technical",
        "Creative", "Ethical", "Meta", "Ecological", "Positivity", "Balance", "Security",
    ]

    /// The name used when the index has none: the canonical one, else "DNN" / the proto NAME.
    public var defaultDimensionName: String {
        if case .consciousness(let id) = kind, (1...14).contains(id) { return DimensionLocation.canonicalNames[Int(id) - 1] }
        return name
    }
}

/// A volume: BASE with consciousness/ and proto/. Discovery only lists directories; it opens
/// no dimension, so it costs the same whatever the volume holds.
public struct Volume: Sendable {
    public let base: String

    public init(base: String) { self.base = base }

    /// True when BASE looks like a volume (it has consciousness/ or proto/).
    public var exists: Bool {
        for sub in ["consciousness", "proto"] {
            if let st = SystemCalls.fileStatus(base + "/" + sub), SystemCalls.isDirectory(st) { return true }
        }
        return !topLevelDimensionDirectories().isEmpty
    }

    public var consciousnessDirectory: String { base + "/consciousness" }
    public var protoDirectory: String { base + "/proto" }

    /// Every dimension directory, consciousness ones by id, then proto ones by name. Entries
    /// that are not directories or whose names do not fit are skipped (hidden ones included:
    /// writers use hidden names for work in progress).
    public func dimensions() -> [DimensionLocation] {
        var found: [DimensionLocation] = []
        var numbered: [(UInt32, String)] = []
        for name in SystemCalls.listDirectory(consciousnessDirectory) ?? [] {
            guard let id = DimensionLocation.consciousnessID(fromDirectoryName: name),
                  let st = SystemCalls.followStatus(consciousnessDirectory + "/" + name), SystemCalls.isDirectory(st) else { continue }
            numbered.append((id, name))
        }
        // Jessy's scripts/init_mmap.py puts its DNN directories straight under the base; such
        // a directory counts where consciousness/ has none of that id (consciousness/ wins).
        let inConsciousness = Set(numbered.map(\.0))
        var topLevel: [(UInt32, String)] = []
        for (id, name) in topLevelDimensionDirectories() where !inConsciousness.contains(id) { topLevel.append((id, name)) }
        let all = numbered.map { ($0.0, $0.1, true) } + topLevel.map { ($0.0, $0.1, false) }
        for (id, name, nested) in all.sorted(by: { $0.0 < $1.0 }) {
            found.append(nested
                ? DimensionLocation(kind: .consciousness(id), directory: consciousnessDirectory + "/" + name, displayPath: "consciousness/" + name)
                : DimensionLocation(kind: .consciousness(id), directory: base + "/" + name, displayPath: name))
        }
        found.append(contentsOf: protoDimensions())
        return found
    }

    /// `DNN` directories directly under the base holding a region.mmap and no index.json:
    /// Jessy's own layout of a volume. Only those: `consciousness/` itself is full of DNN
    /// directories, and must still not pass for a volume (`info vol/consciousness` is told to
    /// name the volume).
    public func topLevelDimensionDirectories() -> [(UInt32, String)] {
        var out: [(UInt32, String)] = []
        for name in SystemCalls.listDirectory(base) ?? [] {
            guard let id = DimensionLocation.consciousnessID(fromDirectoryName: name),
                  let st = SystemCalls.followStatus(base + "/" + name), SystemCalls.isDirectory(st),
                  SystemCalls.fileStatus(base + "/" + name + "/region.mmap") != nil,
                  SystemCalls.fileStatus(base + "/" + name + "/index.json") == nil else { continue }
            out.append((id, name))
        }
        return out
    }

    public func protoDimensions() -> [DimensionLocation] {
        var found: [DimensionLocation] = []
        for name in SystemCalls.listDirectory(protoDirectory) ?? [] {
            guard DimensionLocation.isValidProtoName(name),
                  let st = SystemCalls.followStatus(protoDirectory + "/" + name), SystemCalls.isDirectory(st) else { continue }
            found.append(DimensionLocation(kind: .proto(name), directory: protoDirectory + "/" + name, displayPath: "proto/" + name))
        }
        return found
    }

    /// Hidden directories a writer left behind, relative to BASE: `.D01.pack-*` (pack) and
    /// `.D01.update-*` (update).
    public func leftoverPackDirectories() -> [String] {
        var out: [String] = []
        for sub in ["consciousness", "proto"] {
            for name in SystemCalls.listDirectory(base + "/" + sub) ?? []
            where name.hasPrefix(".") && (name.contains(".pack-") || name.contains(".update-") || name.contains(".import-")) {
                out.append(sub + "/" + name)
            }
        }
        return out
    }

    /// The writers' lock files (`.D01.lock`, `.NAME.lock`), relative to BASE.
    public func lockFiles() -> [String] {
        var out: [String] = []
        for sub in ["consciousness", "proto"] {
            for name in SystemCalls.listDirectory(base + "/" + sub) ?? [] where name.hasPrefix(".") && name.hasSuffix(".lock") && name.count > 6 {
                out.append(sub + "/" + name)
            }
        }
        return out
    }

    /// The location of a dimension directory given by path (for `verify DIR`).
    public static func location(ofDimensionDirectory path: String) -> DimensionLocation? {
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        let parts = trimmed.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard let name = parts.last else { return nil }
        let parent = parts.count >= 2 ? parts[parts.count - 2] : ""
        if let id = DimensionLocation.consciousnessID(fromDirectoryName: name) {
            return DimensionLocation(kind: .consciousness(id), directory: trimmed, displayPath: trimmed)
        }
        if parent == "proto" && DimensionLocation.isValidProtoName(name) {
            return DimensionLocation(kind: .proto(name), directory: trimmed, displayPath: trimmed)
        }
        return nil
    }
}

