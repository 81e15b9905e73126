import ArgumentParser
import LayerFormat

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Print a table of a volume's dimensions: id, name, layers, region and content bytes, padding, updated_at."
    )

    @Argument(help: "A volume (default: $MMAP_BASE_PATH, else data/mmap) or one dimension directory.")
    var path: String?

    func run() throws {
        let target: VolumeTarget
        do {
            target = try VolumeTarget.resolve(Settings.base(path), command: "info", isDefault: path == nil)
        } catch {
            Settings.printError(error.description)
            throw ExitCode.failure
        }
        let locations: [DimensionLocation]
        switch target {
        case .volume(let volume): locations = volume.dimensions()
        case .dimension(let location): locations = [location]
        }
        var rows: [[String]] = [["DIMENSION", "ID", "NAME", "LAYERS", "REGION", "CONTENT", "PADDING", "UPDATED"]]
        var totals = (layers: 0, region: UInt64(0), content: UInt64(0))
        var errors: [String] = []
        for location in locations {
            do {
                guard let g = try Generation.load(location) else {
                    rows.append([location.displayPath, String(location.expectedID), location.defaultDimensionName, "0", "0", "0", "-", "-"])
                    continue
                }
                let region = UInt64(g.region.size), content = g.contentBytes
                totals.layers += g.layers.count; totals.region += region; totals.content += content
                rows.append([location.displayPath, String(g.header.dimensionID), g.dimensionName, String(g.layers.count),
                             String(region), String(content), Self.padding(region: region, content: content), g.updatedAt.rfc3339])
            } catch {
                rows.append([location.displayPath, String(location.expectedID), "(unreadable)", "-", "-", "-", "-", "-"])
                errors.append(error.description)
            }
        }
        rows.append(["TOTAL", "", "", String(totals.layers), String(totals.region), String(totals.content),
                     Self.padding(region: totals.region, content: totals.content), ""])
        print(Self.table(rows))
        for e in errors { print("error: " + e) }
    }

    static func padding(region: UInt64, content: UInt64) -> String {
        guard region > 0 else { return "-" }
        return String(format: "%.1f%%", Double(region - min(content, region)) * 100 / Double(region))
    }

    static func table(_ rows: [[String]]) -> String {
        var widths = [Int](repeating: 0, count: rows[0].count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        let numeric: Set<Int> = [1, 3, 4, 5, 6]
        return rows.map { row in
            row.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                return numeric.contains(i) ? pad + cell : cell + pad
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
