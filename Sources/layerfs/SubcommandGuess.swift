import Glibc

/// `mount` is the default subcommand (mount(8) runs `layerfs SOURCE MOUNTPOINT -o OPTIONS`),
/// so any first word that is not a subcommand is taken as a SOURCE. A mistyped subcommand
/// then got "source umount does not exist". This tells the two apart before parsing: a first
/// argument that is not a path that exists, and is a known alias of a subcommand or within two
/// edits of one, is a typo.
enum SubcommandGuess {
    /// The subcommands, in the order a tie is settled; `help` is ArgumentParser's own.
    static let names = ["mount", "unmount", "init", "pack", "update", "verify", "info", "status", "import", "help"]

    /// Words users reach for out of habit from other tools, with the subcommand they mean.
    static let aliases: [String: String] = [
        "umount": "unmount", "fusermount": "unmount",
        "fsck": "verify", "check": "verify",
        "create": "init", "new": "init", "mkfs": "init",
        "build": "pack",
        "convert": "import", "migrate": "import",
        "stat": "info", "show": "info", "list": "info", "ls": "info",
    ]

    /// The subcommand `word` most likely meant, or nil when it is a subcommand, looks like a
    /// path or an option, names something that exists, or resembles no subcommand.
    static func suggestion(for word: String) -> String? {
        guard !word.isEmpty, !word.hasPrefix("-"), !word.contains("/"), !names.contains(word) else { return nil }
        // Anything that exists is a SOURCE, whatever its name: lstat, so that a dangling
        // symlink counts as existing too (mount then says what is wrong with it).
        var st = stat()
        if lstat(word, &st) == 0 { return nil }
        if let alias = aliases[word.lowercased()] { return alias }
        let lowered = word.lowercased()
        var best: (name: String, distance: Int)?
        for name in names where name != "help" {
            let d = distance(lowered, name)
            if d <= 2, d < (best?.distance ?? Int.max) { best = (name, d) }
        }
        return best?.name
    }

    /// Edit distance counting a swap of two neighbouring letters as one edit ("veirfy" is one
    /// edit from "verify"): optimal string alignment.
    static func distance(_ a: String, _ b: String) -> Int {
        let x = Array(a.unicodeScalars), y = Array(b.unicodeScalars)
        if x.isEmpty { return y.count }
        if y.isEmpty { return x.count }
        var d = [[Int]](repeating: [Int](repeating: 0, count: y.count + 1), count: x.count + 1)
        for i in 0...x.count { d[i][0] = i }
        for j in 0...y.count { d[0][j] = j }
        for i in 1...x.count {
            for j in 1...y.count {
                let cost = x[i - 1] == y[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, x[i - 1] == y[j - 2], x[i - 2] == y[j - 1] {
                    d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[x.count][y.count]
    }
}
