/// The `user.keywords` attribute: keywords joined by `,`, with `,` and `\` inside a keyword
/// escaped as `\,` and `\\`, so that any list round-trips through the attribute (and so
/// through `rsync -aX` and `layerfs pack`).
public enum Keywords {
    public static func join(_ keywords: [String]) -> String {
        var out: [UInt8] = []
        append(keywords, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// `join`, appended as bytes (the mount keeps every layer's value in one shared buffer).
    /// Works on UTF-8 bytes: ',' and '\\' are ASCII and never occur inside a multi-byte
    /// sequence, so escaping byte by byte is escaping character by character.
    public static func append(_ keywords: [String], to out: inout [UInt8]) {
        for (i, k) in keywords.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            for b in k.utf8 {
                if b == UInt8(ascii: ",") || b == UInt8(ascii: "\\") { out.append(UInt8(ascii: "\\")) }
                out.append(b)
            }
        }
    }

    /// Spec rule 7: the joined value is at most 65 536 bytes, the kernel's XATTR_SIZE_MAX. A
    /// longer value could not be read back through getxattr, so the layer's keywords would be
    /// lost on the way through the mount, `rsync -aX` and `pack`.
    public static let maxJoinedBytes = 65_536

    /// The length in bytes of `join(keywords)`, without building it: every index load checks
    /// every layer's list.
    public static func joinedByteCount(_ keywords: [String]) -> Int {
        var count = max(0, keywords.count - 1)
        for k in keywords {
            for b in k.utf8 { count += (b == UInt8(ascii: ",") || b == UInt8(ascii: "\\")) ? 2 : 1 }
        }
        return count
    }

    /// Why `keywords` break rule 7, or nil when they do not.
    public static func limitProblem(_ keywords: [String]) -> String? {
        // Escaping at most doubles a byte: lists well under the limit (nearly all) need no scan.
        var bound = max(0, keywords.count - 1)
        for k in keywords { bound += 2 * k.utf8.count }
        if bound <= maxJoinedBytes { return nil }
        let count = joinedByteCount(keywords)
        if count <= maxJoinedBytes { return nil }
        return "joined as user.keywords they are \(count) bytes, over the limit of \(maxJoinedBytes) (the kernel's XATTR_SIZE_MAX)"
    }

    /// The inverse of `join`. An empty value is the empty list. A trailing lone `\` is kept as
    /// a literal backslash rather than refused: the value came from a user's setfattr.
    public static func split(_ value: String) -> [String] {
        if value.isEmpty { return [] }
        var out: [String] = []
        var current = ""
        var escaped = false
        for ch in value {
            if escaped { current.append(ch); escaped = false; continue }
            if ch == "\\" { escaped = true; continue }
            if ch == "," { out.append(current); current = ""; continue }
            current.append(ch)
        }
        if escaped { current.append("\\") }
        out.append(current)
        return out
    }
}

/// The `user.frequency` attribute and the index's `frequency`: the shortest decimal that reads
/// back as the same double (Swift's `description` is exactly that: 1.5, 2.0, 1e-05).
public enum Frequency {
    public static func format(_ value: Double) -> String { value.description }

    public static func parse(_ text: String) -> Double? {
        let trimmed = text.trimmingCharacters(in: " \n\t")
        // Decimal only: Double() also reads hex floats ("0x10" is 16), which no index holds.
        guard trimmed.allSatisfy({ "0123456789+-.eE".contains($0) }), let v = Double(trimmed), v.isFinite else { return nil }
        return v
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
