import Glibc

/// One file to become a layer, with what `pack` learnt about it.
public struct PackLayerSource: Sendable {
    public var id: UInt32
    /// The file the bytes are read from. For a followed symlink, the link's resolved target,
    /// so that the file checked to lie inside the input is the file that is read.
    public var path: String
    /// The name the user knows the file by, for messages: the entry in the input directory.
    public var displayPath: String
    public var size: UInt64
    public var frequency: Double
    public var keywords: [String]
    public var updatedAt: Timestamp
    /// A `user.checksum` the file carries (e.g. copied off a mount); checked against the bytes.
    public var claimedChecksum: Digest256?

    public init(id: UInt32, path: String, displayPath: String? = nil, size: UInt64, frequency: Double = 1.0, keywords: [String] = [],
                updatedAt: Timestamp, claimedChecksum: Digest256? = nil) {
        self.id = id; self.path = path; self.displayPath = displayPath ?? path; self.size = size; self.frequency = frequency
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

/// Reads an input directory the way `layerfs pack` documents. Nothing is dropped or changed
/// without a word: every entry either becomes a layer, is listed as skipped with its reason,
/// or stops the pack with an error.
///
/// - Regular, non-hidden files become layers.
/// - Hidden entries, directories and special files (FIFOs, sockets, devices) are skipped.
/// - Symbolic links are refused, unless `followSymlinks`; then a link to a regular file
///   beneath the input directory's real path is packed as that file, a dangling link or a
///   link to anything else is skipped, and a link leading out of the input is refused.
/// - Ids come from `layer-NNN` names when every file has one, else 1, 2, … in name order when
///   none has; a mix is refused (unless `renumber`), because either way some file would get
///   an id its name does not say.
/// - Frequency, keywords and checksum come from `user.*` xattrs, updated_at from the mtime.
public enum PackInput {
    public struct Options: Sendable {
        /// Pack what symbolic links point to, when that is a regular file beneath the input
        /// directory. Without it a link is an error: it may lead anywhere (`/etc/hostname`).
        public var followSymlinks = false
        /// Number every file 1, 2, … in name order, also files named `layer-NNN`.
        public var renumber = false

        public init(followSymlinks: Bool = false, renumber: Bool = false) {
            self.followSymlinks = followSymlinks
            self.renumber = renumber
        }
    }

    /// An input entry that does not become a layer, and why.
    public struct Skipped: Equatable, Sendable {
        public var path: String
        public var reason: String

        public init(path: String, reason: String) { self.path = path; self.reason = reason }
    }

    public struct Scan: Sendable {
        /// Sorted by id.
        public var layers: [PackLayerSource]
        public var attributes: PackDirectoryAttributes
        /// In name order.
        public var skipped: [Skipped]
    }

    /// A file that will become a layer, before its id is known.
    struct Candidate {
        var name: String
        var displayPath: String
        /// What is opened: the entry itself, or a followed link's real target.
        var path: String
        var status: stat
    }

    public static func scan(_ input: String, options: Options = Options()) throws(PackError) -> Scan {
        var directory = input
        while directory.count > 1 && directory.hasSuffix("/") { directory.removeLast() }
        // The directory itself is followed if it is a link: the user named it.
        var st = stat()
        guard stat(directory, &st) == 0 else {
            switch errno {
            case ENOENT, ENOTDIR: throw .inputMissing(directory)
            case EACCES: throw .inputDenied(directory)
            default: throw .inputUnusable(directory, problem: "cannot be examined: \(SystemCalls.errnoText())")
            }
        }
        guard SystemCalls.isDirectory(st) else { throw .inputNotDirectory(directory, type: SystemCalls.describeType(st)) }
        let names: [String]
        switch SystemCalls.listDirectoryReportingErrno(directory) {
        case .success(let listed): names = listed
        case .failure(let code) where code.value == EACCES: throw .inputDenied(directory)
        case .failure(let code): throw .inputUnusable(directory, problem: "cannot be listed: \(SystemCalls.errnoText(code.value))")
        }
        // The real path bounds where links may lead. The input's own path may run through
        // links; what matters is where the files are.
        guard let realInput = SystemCalls.realPath(directory) else {
            throw .inputUnusable(directory, problem: "cannot be resolved: \(SystemCalls.errnoText())")
        }
        let prefix = directory == "/" ? "/" : directory + "/"

        var candidates: [Candidate] = []
        var skipped: [Skipped] = []
        for name in names {
            let path = prefix + name
            var lst = stat()
            guard lstat(path, &lst) == 0 else {
                throw .entryUnusable(path, problem: "cannot be examined: \(SystemCalls.errnoText())")
            }
            let type = lst.st_mode & S_IFMT
            if name.hasPrefix(".") {
                skipped.append(Skipped(path: path, reason: type == S_IFDIR ? "hidden directory" : "hidden file"))
                continue
            }
            switch type {
            case S_IFREG:
                candidates.append(Candidate(name: name, displayPath: path, path: path, status: lst))
            case S_IFDIR:
                skipped.append(Skipped(path: path, reason: "directory"))
            case S_IFLNK:
                let target = readLink(path) ?? "?"
                guard options.followSymlinks else { throw .symlinkRefused(path, target: target) }
                guard let real = SystemCalls.realPath(path) else {
                    let code = errno
                    switch code {
                    case ENOENT, ENOTDIR: skipped.append(Skipped(path: path, reason: "dangling symlink (to \(PackError.quote(target)))"))
                    case ELOOP: skipped.append(Skipped(path: path, reason: "symlink loop"))
                    default: throw .entryUnusable(path, problem: "symbolic link cannot be resolved: \(SystemCalls.errnoText(code))")
                    }
                    continue
                }
                // Checked on the fully resolved path, so `a -> b -> /etc/x` and `a -> ../x`
                // are both caught, whatever the link text says.
                guard real == realInput || real.hasPrefix(realInput == "/" ? "/" : realInput + "/") else {
                    throw .symlinkOutside(path, target: real, input: realInput)
                }
                var tst = stat()
                guard stat(real, &tst) == 0 else {
                    throw .entryUnusable(path, problem: "cannot examine \(PackError.quote(real)): \(SystemCalls.errnoText())")
                }
                switch tst.st_mode & S_IFMT {
                case S_IFREG: candidates.append(Candidate(name: name, displayPath: path, path: real, status: tst))
                case S_IFDIR: skipped.append(Skipped(path: path, reason: "symlink to a directory"))
                default: skipped.append(Skipped(path: path, reason: "symlink to a file that is not regular (\(kindName(tst)))"))
                }
            default:
                skipped.append(Skipped(path: path, reason: "not a regular file (\(kindName(lst)))"))
            }
        }

        let ids = try assignIDs(candidates, directory: directory, renumber: options.renumber)
        var layers: [PackLayerSource] = []
        for (candidate, id) in zip(candidates, ids) {
            do throws(FormatError) {
                layers.append(try source(candidate, id: id))
            } catch {
                throw .format(error)
            }
        }
        var attributes = PackDirectoryAttributes()
        attributes.dimensionName = SystemCalls.getXattr(directory, "user.dimension_name")
        if let text = SystemCalls.getXattr(directory, "user.created_at") {
            guard let t = Timestamp(rfc3339: text) else {
                throw .format(FormatError(.invalidValue, file: directory, field: "user.created_at", Timestamp.refusal(text)))
            }
            attributes.createdAt = t
        }
        return Scan(layers: layers.sorted { $0.id < $1.id }, attributes: attributes, skipped: skipped)
    }

    /// Ids for `candidates` (in name order): from their `layer-NNN` names when all have one,
    /// else 1, 2, … when none has (or when asked to renumber).
    static func assignIDs(_ candidates: [Candidate], directory: String, renumber: Bool) throws(PackError) -> [UInt32] {
        let named = candidates.map { layerID(fromName: $0.name) }
        let others = zip(candidates, named).filter { $0.1 == nil }.map(\.0.name)
        if renumber || others.count == candidates.count {
            guard candidates.count <= Int(UInt32.max) else {
                throw .inputUnusable(directory, problem: "holds more files than a dimension has layer ids (\(UInt32.max))")
            }
            return candidates.indices.map { UInt32($0 + 1) }
        }
        guard others.isEmpty else {
            throw .mixedNames(directory, named: candidates.count - others.count, others: others)
        }
        var seen: [UInt32: String] = [:]
        var ids: [UInt32] = []
        for (candidate, id) in zip(candidates, named) {
            guard let id else { continue } // none: `others` is empty
            if let other = seen[id] { throw .duplicateID(other, candidate.displayPath, id: id) }
            seen[id] = candidate.displayPath
            ids.append(id)
        }
        return ids
    }

    /// Reads what the file's attributes say about the layer.
    static func source(_ candidate: Candidate, id: UInt32) throws(FormatError) -> PackLayerSource {
        let path = candidate.path, display = candidate.displayPath
        var frequency = 1.0
        if let text = SystemCalls.getXattr(path, "user.frequency") {
            guard let f = Frequency.parse(text) else {
                throw FormatError(.invalidValue, file: display, field: "user.frequency", "\"\(text)\" is not a finite number")
            }
            frequency = f
        }
        let keywords = SystemCalls.getXattr(path, "user.keywords").map(Keywords.split) ?? []
        // The attribute itself fits the kernel's limit, but a trailing lone `\` comes back
        // escaped, one byte longer.
        if let problem = Keywords.limitProblem(keywords) {
            throw FormatError(.invalidValue, file: display, field: "user.keywords", problem)
        }
        var claimed: Digest256?
        if let text = SystemCalls.getXattr(path, "user.checksum") {
            guard let d = Digest256(checksumString: text) else {
                throw FormatError(.invalidValue, file: display, field: "user.checksum", "\"\(text)\" is not \"sha256:\" followed by 64 lowercase hex digits")
            }
            claimed = d
        }
        return PackLayerSource(id: id, path: path, displayPath: display, size: UInt64(candidate.status.st_size), frequency: frequency,
                               keywords: keywords, updatedAt: Timestamp(seconds: Int64(candidate.status.st_mtim.tv_sec)),
                               claimedChecksum: claimed)
    }

    /// `FIFO`, `socket`, … for the skipped list.
    static func kindName(_ st: stat) -> String {
        switch st.st_mode & S_IFMT {
        case S_IFIFO: return "FIFO"
        case S_IFSOCK: return "socket"
        case S_IFCHR: return "character device"
        case S_IFBLK: return "block device"
        default: return "unknown type"
        }
    }

    static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n >= 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
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
