import Glibc

/// One file to become a layer, with what `pack` learnt about it.
public struct PackLayerSource: Sendable {
    public var id: UInt32
    public var path: String
    public var size: UInt64
    public var frequency: Double
    public var keywords: [String]
    public var updatedAt: Timestamp
    /// A `user.checksum` the file carries (e.g. copied off a mount); checked against the bytes.
    public var claimedChecksum: Digest256?

    public init(id: UInt32, path: String, size: UInt64, frequency: Double = 1.0, keywords: [String] = [],
                updatedAt: Timestamp, claimedChecksum: Digest256? = nil) {
        self.id = id; self.path = path; self.size = size; self.frequency = frequency
        self.keywords = keywords; self.updatedAt = updatedAt; self.claimedChecksum = claimedChecksum
    }
}

/// The directory-level attributes an input directory may carry (a copy of a mounted
/// dimension directory carries all of them).
public struct PackDirectoryAttributes: Sendable {
    public var dimensionName: String?
    public var createdAt: Timestamp?

    public init(dimensionName: String? = nil, createdAt: Timestamp? = nil) {
        self.dimensionName = dimensionName
        self.createdAt = createdAt
    }
}

/// Reads an input directory the way `layerfs pack` documents: its regular, non-hidden files
/// become layers; ids come from `layer-NNN` names when every file has one, else from the
/// sorted names; frequency, keywords and checksum from `user.*` xattrs, updated_at from mtime.
public enum PackInput {
    public static func scan(_ directory: String) throws(FormatError) -> (layers: [PackLayerSource], attributes: PackDirectoryAttributes) {
        guard let st = SystemCalls.followStatus(directory), SystemCalls.isDirectory(st) else {
            throw FormatError(.unusableFile, file: directory, "input is not a directory")
        }
        guard let names = SystemCalls.listDirectory(directory) else {
            throw SystemCalls.fail(directory, "cannot list")
        }
        var files: [(name: String, stat: stat)] = []
        for name in names where !name.hasPrefix(".") {
            guard let st = SystemCalls.followStatus(directory + "/" + name), SystemCalls.isRegular(st) else { continue }
            files.append((name, st))
        }
        let namedIDs = files.map { layerID(fromName: $0.name) }
        let useNames = !files.isEmpty && namedIDs.allSatisfy { $0 != nil }
        var layers: [PackLayerSource] = []
        var seen: [UInt32: String] = [:]
        for (i, file) in files.enumerated() {
            let path = directory + "/" + file.name
            let id: UInt32
            if useNames, let named = namedIDs[i] {
                id = named
                if let other = seen[id] {
                    throw FormatError(.invalidValue, file: path, field: "name", "layer id \(id) is also the id of \(other)")
                }
                seen[id] = file.name
            } else {
                guard i < Int(UInt32.max) else { throw FormatError(.tooLarge, file: directory, "too many files") }
                id = UInt32(i + 1)
            }
            var frequency = 1.0
            if let text = SystemCalls.getXattr(path, "user.frequency") {
                guard let f = Frequency.parse(text) else {
                    throw FormatError(.invalidValue, file: path, field: "user.frequency", "\"\(text)\" is not a finite number")
                }
                frequency = f
            }
            let keywords = SystemCalls.getXattr(path, "user.keywords").map(Keywords.split) ?? []
            // The attribute itself fits the kernel's limit, but a trailing lone `\` comes back
            // escaped, one byte longer.
            if let problem = Keywords.limitProblem(keywords) {
                throw FormatError(.invalidValue, file: path, field: "user.keywords", problem)
            }
            var claimed: Digest256?
            if let text = SystemCalls.getXattr(path, "user.checksum") {
                guard let d = Digest256(checksumString: text) else {
                    throw FormatError(.invalidValue, file: path, field: "user.checksum", "\"\(text)\" is not \"sha256:\" followed by 64 lowercase hex digits")
                }
                claimed = d
            }
            layers.append(PackLayerSource(id: id, path: path, size: UInt64(file.stat.st_size), frequency: frequency,
                                          keywords: keywords, updatedAt: Timestamp(seconds: Int64(file.stat.st_mtim.tv_sec)),
                                          claimedChecksum: claimed))
        }
        var attributes = PackDirectoryAttributes()
        attributes.dimensionName = SystemCalls.getXattr(directory, "user.dimension_name")
        if let text = SystemCalls.getXattr(directory, "user.created_at") {
            guard let t = Timestamp(rfc3339: text) else {
                throw FormatError(.invalidValue, file: directory, field: "user.created_at", Timestamp.refusal(text))
            }
            attributes.createdAt = t
        }
        return (layers.sorted { $0.id < $1.id }, attributes)
    }

    /// `layer-NNN` (digits, id ≥ 1) → NNN.
    public static func layerID(fromName name: String) -> UInt32? {
        guard name.hasPrefix("layer-") else { return nil }
        let digits = name.dropFirst(6)
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let id = UInt32(digits), id >= 1 else { return nil }
        return id
    }

    /// The mount's file name for a layer: at least three digits.
    public static func fileName(forLayer id: UInt32) -> String {
        let digits = String(id)
        return "layer-" + String(repeating: "0", count: max(0, 3 - digits.count)) + digits
    }
}
