/// The `user.keywords` attribute: keywords joined by `,`, with `,` and `\` inside a keyword
/// escaped as `\,` and `\\`, so that any list round-trips through the attribute (and so
/// through `rsync -aX` and `layerfs pack`).
public enum Keywords {
    public static func join(_ keywords: [String]) -> String {
        var out = ""
        for (i, k) in keywords.enumerated() {
            if i > 0 { out += "," }
            for ch in k {
                if ch == "," || ch == "\\" { out.append("\\") }
                out.append(ch)
            }
        }
        return out
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
        guard let v = Double(trimmed), v.isFinite else { return nil }
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
