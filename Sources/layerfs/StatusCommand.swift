import ArgumentParser
import Foundation
import Glibc

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show what layerfs mounts are doing: source, options, daemon, dimensions and counters.",
        discussion: """
        Asks each mount's daemon over its status socket (/run/layerfs/ for root's mounts, $XDG_RUNTIME_DIR/layerfs/ for a user's), which answers only root, the user who mounted, and, with allow_other, users who may read the mount's root directory. Nothing appears inside the mount.

        Examples:
          layerfs status                      # every layerfs mount
          layerfs status /mnt/layers
          layerfs status --json /mnt/layers | python3 -c 'import json,sys; print(json.load(sys.stdin)["totals"]["read_bytes"])'
        """
    )

    @Argument(help: "A layerfs mountpoint (default: every layerfs mount).")
    var mountpoint: String?

    @Flag(help: "Print JSON: the daemon's document for one mount; {\"mounts\": [...]} without MOUNTPOINT.")
    var json = false

    struct Target {
        var mountpoint: String
        var device: String
        var source: String
        var uid: uid_t?
    }

    func run() throws {
        var targets = StatusCommand.layerfsMounts()
        if let mountpoint {
            _ = try MountTable.layerfsMount(at: mountpoint)
            let path = MountTable.absolute(mountpoint)
            targets = targets.filter { $0.mountpoint == path }
        }
        var failed = false
        var documents: [String] = []
        var tables: [String] = []
        for target in targets {
            switch ControlSocket.ask(ControlSocket.candidates(device: target.device, mountUID: target.uid)) {
            case .document(let text):
                documents.append(text.trimmingCharacters(in: .whitespacesAndNewlines))
                tables.append(StatusCommand.table(text))
            case .refused(let why):
                failed = true
                Settings.printError("status of '\(target.mountpoint)': permission denied (\(why))")
                documents.append("{ \"mountpoint\": \(JSONOutput.quote(target.mountpoint)), \"error\": \"permission denied\" }")
            case .unreachable(let why):
                failed = true
                Settings.printError("status of '\(target.mountpoint)': \(why)")
                documents.append("{ \"mountpoint\": \(JSONOutput.quote(target.mountpoint)), \"error\": \(JSONOutput.quote(why)) }")
            }
        }
        if json {
            if mountpoint != nil {
                if let first = documents.first, !failed { print(first) }
            } else {
                print("{\n\"mounts\": [\n" + documents.joined(separator: ",\n") + "\n]\n}")
            }
        } else if targets.isEmpty {
            print("no layerfs mounts")
        } else {
            print(tables.joined(separator: "\n"), terminator: "")
        }
        if failed { throw ExitCode.failure }
    }

    /// Every fuse.layerfs mount, with the id of the user who made it (mountinfo's user_id).
    static func layerfsMounts() -> [Target] {
        guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return [] }
        var out: [Target] = []
        for line in text.split(separator: "\n") {
            let halves = line.components(separatedBy: " - ")
            guard halves.count >= 2 else { continue }
            let left = halves[0].split(separator: " ").map(String.init)
            let right = halves[1].split(separator: " ").map(String.init)
            guard left.count >= 5, right.count >= 3, right[0] == "fuse.layerfs" else { continue }
            let uid = right[2].split(separator: ",").first { $0.hasPrefix("user_id=") }.flatMap { uid_t($0.dropFirst(8)) }
            out.append(Target(mountpoint: MountTable.unescape(left[4]), device: left[2], source: MountTable.unescape(right[1]), uid: uid))
        }
        return out
    }

    // MARK: - The table

    static func table(_ text: String) -> String {
        guard let data = text.data(using: .utf8),
              let doc = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return text }
        func s(_ v: Any?) -> String {
            switch v {
            case let x as String: return x
            case let x as NSNumber: return x.stringValue
            default: return "-"
            }
        }
        func duration(_ v: Any?) -> String {
            guard let seconds = (v as? NSNumber)?.doubleValue else { return "-" }
            if seconds < 0.001 { return String(format: "%.0f µs", seconds * 1e6) }
            if seconds < 1 { return String(format: "%.2f ms", seconds * 1e3) }
            let t = Int(seconds)
            if t < 3600 { return "\(t / 60)m\(String(format: "%02d", t % 60))s" }
            return "\(t / 86400)d\(t / 3600 % 24)h\(String(format: "%02d", t / 60 % 60))m"
        }
        func pairs(_ v: Any?) -> String {
            guard let o = v as? [String: Any], !o.isEmpty else { return "none" }
            return o.keys.sorted().map { "\($0) \(s(o[$0]))" }.joined(separator: ", ")
        }
        var out = "\(s(doc["mountpoint"])): source \(s(doc["source"])), daemon pid \(s(doc["pid"])), up \(duration(doc["uptime_seconds"]))\n"
        out += "  options: \(s(doc["options"]))\n"
        if doc["access_log"] is String {
            out += "  access log: \(s(doc["access_log"])) (\(s(doc["access_log_lines"])) lines, \(s(doc["access_log_lost"])) lost)\n"
        }
        if doc["metrics_file"] is String {
            out += "  metrics file: \(s(doc["metrics_file"])) (every \(s(doc["metrics_interval_seconds"])) s)\n"
        }
        let totals = doc["totals"] as? [String: Any] ?? [:]
        out += "  requests: \(pairs(totals["requests"]))\n"
        out += "  errors: \(pairs(totals["errors"]))\n"
        let latency = totals["read_latency"] as? [String: Any] ?? [:]
        out += "  reads: \(s(totals["reads"])), \(s(totals["read_bytes"])) bytes (and \(s(totals["prefetch_bytes"])) pushed ahead); latency p50 ≤ \(duration(latency["p50_seconds"])), p99 ≤ \(duration(latency["p99_seconds"])), max \(duration(latency["max_seconds"]))\n"
        out += "  generations: \(s(totals["generations_loaded"])) loaded, \(s(totals["generations_rejected"])) rejected, \(s(totals["generations_retired_held"])) retired but held; lookups outstanding \(s(totals["lookups_outstanding"]))\n"
        let header = ["DIMENSION", "STATUS", "GENERATION", "LAYERS", "BYTES", "UPDATED", "LAST CHANGE", "LOAD", "LOADED", "REJECTED", "HELD", "LOOKUPS", "READS", "READ BYTES", "ERROR"]
        var rows = [header]
        for d in doc["dimensions"] as? [[String: Any]] ?? [] {
            let generation = s(d["generation"])
            rows.append([s(d["dimension"]), s(d["status"]), generation.count > 19 ? String(generation.prefix(19)) + "…" : generation,
                         s(d["layers"]), s(d["bytes"]), s(d["updated_at"]), s(d["last_change"]), duration(d["last_load_seconds"]),
                         s(d["generations_loaded"]), s(d["generations_rejected"]), s(d["generations_retired_held"]),
                         s(d["lookups_outstanding"]), s(d["reads"]), s(d["read_bytes"]), s(d["error"])])
        }
        var widths = [Int](repeating: 0, count: header.count)
        for row in rows { for (i, cell) in row.enumerated() where i < header.count - 1 { widths[i] = max(widths[i], cell.count) } }
        for row in rows {
            out += "  " + row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces) + "\n"
        }
        return out
    }
}
