import Glibc

/// Where `layerfs pack` may write: only a directory that readers look at, under the name they
/// look for. Readers (discovery, verify, the mount) see `consciousness/DNN` with the id written
/// as `DimensionLocation.directoryName(for:)` writes it, and `proto/NAME` with a valid NAME;
/// anything else is skipped by all of them. A pack to `consciousness/D5` would write a
/// dimension no reader ever shows, and report success. So the output is checked against the
/// spec's names before anything is written.
public enum PackOutput {
    /// What the command line asks for.
    public enum Request: Equatable, Sendable {
        /// `--dimension N`: consciousness/DNN, dimension_id N (N ≥ 1).
        case dimension(UInt32)
        /// `--proto`: proto/NAME, dimension_id 0; the output's own name is NAME.
        case proto

        var option: String {
            switch self {
            case .dimension(let id): return "--dimension \(id)"
            case .proto: return "--proto"
            }
        }
    }

    public struct Plan: Equatable, Sendable {
        public var location: DimensionLocation
        /// Directories above the output that do not exist yet, outermost first. The pack
        /// creates them (a new volume, e.g. `scratch/consciousness/`); the command says so.
        public var missingParents: [String]

        /// Creates `missingParents`: the writer lock lives beside the dimension, so they must
        /// exist before it can be taken. Called after every check that needs no lock, so that
        /// a refusal leaves no directory behind.
        public func createParents() throws(FormatError) {
            try Packer.makeDirectories(Packer.parentDirectory(of: location.directory))
        }
    }

    /// Checks OUTPUT_DIR against `request` and the spec's names; nothing is written.
    ///
    /// The parent must be named `consciousness` (for `--dimension`) or `proto` (for
    /// `--proto`). Its name is taken from the path as written, which is the name a reader of
    /// the volume looks up (a `consciousness` that is a symlink still counts); only where the
    /// path does not spell it (`D05`, `./D05`, `../x/..`) is the parent resolved on disk.
    ///
    /// `writer` names the command in the refusal of a symbolic link (`pack`, `update`).
    public static func plan(_ output: String, for request: Request, writer: String = "pack") throws(PackError) -> Plan {
        var path = output
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        guard !path.isEmpty else { throw .outputUnusable(output: output, problem: "is empty: give the dimension directory, e.g. 'data/mmap/consciousness/D05'") }
        let (parent, name) = split(path)
        guard !name.isEmpty && name != "." && name != ".." else {
            throw .outputUnusable(output: path, problem: "names no directory of its own: give the dimension directory itself, e.g. 'data/mmap/consciousness/D05'")
        }
        let parentName = try nameOfParent(parent, output: path)

        let wantName: String, wantParent: String, kind: DimensionLocation.Kind
        switch request {
        case .dimension(let id):
            wantName = DimensionLocation.directoryName(for: id)
            wantParent = "consciousness"
            kind = .consciousness(id)
        case .proto:
            guard DimensionLocation.isValidProtoName(name) else {
                throw .outputMismatch(output: path, option: request.option, expected: nil,
                                      note: "\(PackError.quote(name)) is not a proto name (1 to 64 of A-Z a-z 0-9 . _ -, not starting with '.')")
            }
            wantName = name
            wantParent = "proto"
            kind = .proto(name)
        }
        if name != wantName || parentName != wantParent {
            // The right folder keeps its spelling (`D6` in consciousness/ → `D06`). The volume
            // is the parent's parent when the parent is the other dimension folder; else the
            // parent itself is taken for the volume (`nv/D05` → `nv/consciousness/D05`).
            let expected: String
            if parentName == wantParent {
                expected = join(parent, wantName)
            } else if parentName == "consciousness" || parentName == "proto" {
                expected = join(grandparent(parent), wantParent, wantName)
            } else {
                expected = join(parent, wantParent, wantName)
            }
            var note: String?
            if case .dimension = request, let other = DimensionLocation.consciousnessID(fromDirectoryName: name), parentName == "consciousness" {
                note = "\(PackError.quote(name)) is dimension \(other)"
            }
            throw .outputMismatch(output: path, option: request.option, expected: expected, note: note)
        }

        // The output is replaced by swapping directories: it must be one, not a link to one
        // (the swap would replace the link) nor a file.
        var st = stat()
        if lstat(path, &st) == 0 {
            guard SystemCalls.isDirectory(st) else {
                if st.st_mode & S_IFMT == S_IFLNK {
                    throw .outputUnusable(output: path, problem: "is a symbolic link: \(writer) replaces the directory itself, so give the dimension directory, not a link to it")
                }
                throw .outputUnusable(output: path, problem: "exists and is \(SystemCalls.describeType(st)), not a directory")
            }
        } else if errno != ENOENT && errno != ENOTDIR {
            throw .outputUnusable(output: path, problem: "cannot be examined: \(SystemCalls.errnoText())")
        }

        // ENOTDIR: something above is a file; the walk goes up to it and names it.
        var missing: [String] = []
        var p = parent
        while p != "." && p != "/" && SystemCalls.followStatus(p) == nil {
            guard errno == ENOENT || errno == ENOTDIR else { throw .outputUnusable(output: path, problem: "cannot be created in \(PackError.quote(p)): \(SystemCalls.errnoText())") }
            missing.insert(p, at: 0)
            p = split(p).parent
        }
        if let st = SystemCalls.followStatus(p), !SystemCalls.isDirectory(st) {
            throw .outputUnusable(output: path, problem: "cannot be created: \(PackError.quote(p)) is \(SystemCalls.describeType(st)), not a directory")
        }
        return Plan(location: DimensionLocation(kind: kind, directory: path, displayPath: path), missingParents: missing)
    }

    /// What a dimension directory given by its path asks for (`layerfs update DIMENSION_DIR`,
    /// which has no `--dimension`): a proto-dimension under a folder named `proto`, else
    /// dimension N for a name `D` + digits, also one spelt otherwise than readers spell it
    /// (`D5`, `D005`), so that `plan` names the right spelling. nil for anything else.
    public static func request(forDimensionDirectory path: String) throws(PackError) -> Request? {
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        let (parent, name) = split(trimmed)
        guard !name.isEmpty && name != "." && name != ".." else { return nil }
        if try nameOfParent(parent, output: trimmed) == "proto" { return .proto }
        let digits = name.dropFirst()
        guard name.first == "D", !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
              let id = UInt32(digits), id >= 1 else { return nil }
        return .dimension(id)
    }

    /// `a/b/c` → (`a/b`, `c`); `c` → (`.`, `c`); `/c` → (`/`, `c`). Repeated slashes count as one.
    static func split(_ path: String) -> (parent: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let name = String(path[path.index(after: slash)...])
        var parent = String(path[..<slash])
        while parent.count > 1 && parent.hasSuffix("/") { parent.removeLast() }
        return (parent.isEmpty ? "/" : parent, name)
    }

    /// The name readers know the parent by: its last component as written, or, where the path
    /// does not spell one (`.`, `..`, `/`), the last component of its real path.
    static func nameOfParent(_ parent: String, output: String) throws(PackError) -> String {
        let written = split(parent).name
        if parent != "/" && written != "." && written != ".." { return written }
        guard let resolved = SystemCalls.realPath(parent) else {
            throw .outputUnusable(output: output, problem: "has a parent that cannot be resolved (\(PackError.quote(parent))): \(SystemCalls.errnoText())")
        }
        return resolved == "/" ? "" : split(resolved).name
    }

    /// The directory above `parent`, as a path the user can type.
    static func grandparent(_ parent: String) -> String {
        let written = split(parent).name
        if parent == "." { return ".." }
        if parent == "/" { return "/" }
        if written == "." || written == ".." { return parent + "/.." }
        return split(parent).parent
    }

    /// Joins path parts, leaving out a leading `.` (`./consciousness/D05` reads as `consciousness/D05`).
    static func join(_ base: String, _ parts: String...) -> String {
        let tail = parts.joined(separator: "/")
        if base == "." { return tail }
        return base.hasSuffix("/") ? base + tail : base + "/" + tail
    }
}
