import ArgumentParser
import Foundation
import LayerFormat

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Print a table of a volume's dimensions: id, name, layers, region and content bytes, padding, updated_at, status.",
        // One line per paragraph: ArgumentParser wraps each line itself, and a line break in
        // the source would be a break in the middle of a sentence on the terminal.
        discussion: [
            "Loads and checks every dimension's index and header (no checksums: `layerfs verify` hashes the bytes). "
                + "A dimension that fails to load is marked FAILED in the STATUS column and its error is printed after the table; "
                + "the exit status is then 1, and 0 when every dimension is ok or empty.",
            "--json prints one JSON object instead: the volume, each dimension (id, kind, name, path relative to the volume, "
                + "layers, region_bytes, content_bytes, padding_bytes, padding_percent, updated_at, status ok/empty/failed, error), "
                + "the totals and the volume's own errors.",
            "Examples:\n"
                + "  layerfs info data/mmap\n"
                + "  layerfs info data/mmap/consciousness/D05      (one dimension)\n"
                + "  layerfs info --json data/mmap | python3 -m json.tool",
        ].joined(separator: "\n\n")
    )

    @Argument(help: "A volume (default: $MMAP_BASE_PATH, else data/mmap) or one dimension directory.")
    var path: String?

    @Flag(help: "Print one JSON object instead of the table (for scripts).")
    var json = false

    enum Status: String {
        case ok, empty, failed
    }

    /// What info found out about one dimension.
    struct Summary {
        var location: DimensionLocation
        var status: Status
        var id: UInt32
        var name: String
        var layers: Int?
        var regionBytes: UInt64?
        var contentBytes: UInt64?
        var updatedAt: String?
        var error: FormatError?
        /// A Jessy legacy region: its layout and what the parser recovered from.
        var legacy: LegacyDetails? = nil

        var paddingBytes: UInt64? {
            guard let regionBytes, let contentBytes else { return nil }
            return regionBytes - min(contentBytes, regionBytes)
        }
    }

    func run() throws {
        let given = Settings.base(path)
        let target: VolumeTarget
        do {
            target = try VolumeTarget.resolve(given, command: "info", isDefault: path == nil)
        } catch {
            Settings.printError(error.description)
            throw ExitCode.failure
        }
        let locations: [DimensionLocation]
        var volumeProblems: [FormatError] = []
        switch target {
        case .volume(let volume):
            volumeProblems = Verifier.structureProblems(volume)
            locations = volume.dimensions()
        case .dimension(let location):
            locations = [location]
        }
        let summaries = locations.map(Self.summarize)
        let failed = summaries.contains { $0.status == .failed } || !volumeProblems.isEmpty
        if json {
            let volumePath: String? = if case .volume = target { given } else { nil }
            print(Self.json(volume: volumePath, summaries: summaries, volumeProblems: volumeProblems).rendered())
        } else {
            print(Self.table(summaries))
        }
        // The errors go to stderr in both forms, so that stdout stays a table or one JSON
        // object, and a script that only looks at the exit status still gets told why.
        for problem in volumeProblems { Settings.printError(problem.description) }
        for summary in summaries { if let error = summary.error { Settings.printError(error.description) } }
        for summary in summaries {
            for warning in summary.legacy?.warnings ?? [] { Settings.printError("warning: " + warning.description) }
        }
        if failed { throw ExitCode.failure }
    }

    static func summarize(_ location: DimensionLocation) -> Summary {
        do {
            guard let g = try Generation.load(location) else {
                return Summary(location: location, status: .empty, id: location.expectedID, name: location.defaultDimensionName,
                               layers: 0, regionBytes: 0, contentBytes: 0)
            }
            return Summary(location: location, status: .ok, id: g.header.dimensionID, name: g.dimensionName, layers: g.layers.count,
                           regionBytes: UInt64(g.region.size), contentBytes: g.contentBytes, updatedAt: g.updatedAt.rfc3339,
                           legacy: g.legacy)
        } catch {
            return Summary(location: location, status: .failed, id: location.expectedID, name: location.defaultDimensionName, error: error)
        }
    }

    // MARK: - The table

    static func table(_ summaries: [Summary]) -> String {
        var rows: [[String]] = [["DIMENSION", "ID", "NAME", "LAYERS", "REGION", "CONTENT", "PADDING", "UPDATED", "STATUS"]]
        var totals = (layers: 0, region: UInt64(0), content: UInt64(0), failed: 0)
        for s in summaries {
            totals.layers += s.layers ?? 0
            totals.region += s.regionBytes ?? 0
            totals.content += s.contentBytes ?? 0
            if s.status == .failed { totals.failed += 1 }
            rows.append([s.location.displayPath, String(s.id), s.name, s.layers.map(String.init) ?? "-",
                         s.regionBytes.map(String.init) ?? "-", s.contentBytes.map(String.init) ?? "-",
                         s.regionBytes.flatMap { r in s.contentBytes.map { padding(region: r, content: $0) } } ?? "-",
                         s.updatedAt ?? "-", s.status == .failed ? "FAILED" : s.status.rawValue + legacyStatus(s.legacy)])
        }
        rows.append(["TOTAL", "", "", String(totals.layers), String(totals.region), String(totals.content),
                     padding(region: totals.region, content: totals.content), "", totals.failed == 0 ? "" : "\(totals.failed) FAILED"])
        return layout(rows)
    }

    /// ` (jessy-json, no checksums)`, plus `, recovered` when the parser warned: the rest of
    /// the warning is printed after the table.
    static func legacyStatus(_ legacy: LegacyDetails?) -> String {
        guard let legacy else { return "" }
        return " (\(legacy.layout.formatName), no checksums\(legacy.warnings.isEmpty ? "" : ", recovered"))"
    }

    static func padding(region: UInt64, content: UInt64) -> String {
        guard region > 0 else { return "-" }
        return String(format: "%.1f%%", Double(region - min(content, region)) * 100 / Double(region))
    }

    static func layout(_ rows: [[String]]) -> String {
        var widths = [Int](repeating: 0, count: rows[0].count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        let numeric: Set<Int> = [1, 3, 4, 5, 6]
        return rows.map { row in
            row.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                return numeric.contains(i) ? pad + cell : cell + pad
            }.joined(separator: "  ").trimmingTrailingSpaces()
        }.joined(separator: "\n")
    }

    // MARK: - JSON

    static func json(volume: String?, summaries: [Summary], volumeProblems: [FormatError]) -> JSONOutput {
        func percent(_ padding: UInt64?, _ region: UInt64?) -> JSONOutput {
            guard let padding, let region, region > 0 else { return .null }
            return .number(String(format: "%.1f", Double(padding) * 100 / Double(region)))
        }
        let dimensions: [JSONOutput] = summaries.map { s in
            let kind: String = if case .proto = s.location.kind { "proto" } else { "consciousness" }
            // A legacy dimension has three more keys (format, checksums, warnings); a v1 one
            // keeps exactly the keys it always had.
            let legacyKeys: [(String, JSONOutput)] = s.legacy.map { legacy in
                [("format", .string(legacy.layout.formatName)), ("checksums", .number("false")),
                 ("warnings", .array(legacy.warnings.map { .string($0.description) }))]
            } ?? []
            return .object([
                ("id", .integer(UInt64(s.id))), ("kind", .string(kind)), ("name", .string(s.name)),
                ("path", .string(s.location.displayPath)), ("layers", .optional(s.layers.map { UInt64($0) })),
                ("region_bytes", .optional(s.regionBytes)), ("content_bytes", .optional(s.contentBytes)),
                ("padding_bytes", .optional(s.paddingBytes)), ("padding_percent", percent(s.paddingBytes, s.regionBytes)),
                ("updated_at", .optional(s.updatedAt)), ("status", .string(s.status.rawValue)),
                ("error", .optional(s.error?.description)),
            ] + legacyKeys)
        }
        let region = summaries.reduce(UInt64(0)) { $0 + ($1.regionBytes ?? 0) }
        let content = summaries.reduce(UInt64(0)) { $0 + ($1.contentBytes ?? 0) }
        let paddingTotal = summaries.reduce(UInt64(0)) { $0 + ($1.paddingBytes ?? 0) }
        let count = { (status: Status) in UInt64(summaries.filter { $0.status == status }.count) }
        let failed = count(.failed) > 0 || !volumeProblems.isEmpty
        return .object([
            ("volume", .optional(volume)),
            ("status", .string(failed ? "failed" : "ok")),
            ("dimensions", .array(dimensions)),
            ("totals", .object([
                ("dimensions", .integer(UInt64(summaries.count))), ("ok", .integer(count(.ok))),
                ("empty", .integer(count(.empty))), ("failed", .integer(count(.failed))),
                ("layers", .integer(summaries.reduce(UInt64(0)) { $0 + UInt64($1.layers ?? 0) })),
                ("region_bytes", .integer(region)), ("content_bytes", .integer(content)),
                ("padding_bytes", .integer(paddingTotal)), ("padding_percent", percent(paddingTotal, region)),
            ])),
            ("errors", .array(volumeProblems.map { .string($0.description) })),
        ])
    }
}

private extension String {
    /// The last column is left-aligned: its padding would only be trailing blanks.
    func trimmingTrailingSpaces() -> String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
