import LayerFormat

/// One fuzz case: the header parser, the index parser and the layer rules on arbitrary bytes.
/// The first byte picks the parser so one corpus covers all three; both legacy (Jessy) region
/// parsers run on every input besides, since they take whole files of any shape. Every
/// rejection must be a `FormatError` (the typed throws guarantee it); a crash or a hang is a
/// finding.
enum FuzzCase {
    static func run(_ data: UnsafeRawBufferPointer) {
        guard let selector = data.first else { return }
        let body = UnsafeRawBufferPointer(rebasing: data.dropFirst())
        switch selector % 3 {
        case 0:
            _ = try? RegionHeader(parsing: body, file: "fuzz/region.mmap")
        default:
            do {
                let index = try DimensionIndex(parsing: Array(body), file: "fuzz/index.json")
                // Written back, a parsed index must parse to the same value.
                let again = try DimensionIndex(parsing: index.serialized, file: "fuzz/index.json")
                if again != index { fatalError("index does not round-trip: \(index)") }
                _ = try? Generation.validatedLayersForFuzzing(index.layers, totalSize: index.totalSize)
            } catch {
                if error.description.isEmpty { fatalError("empty error message") }
            }
        }
        runLegacy(body)
    }

    /// Both legacy parsers, forced (not detected), so each sees every input. What they accept
    /// must be usable as is: every layer inside the input, since the mount will serve these
    /// ranges straight from the mapping.
    static func runLegacy(_ body: UnsafeRawBufferPointer) {
        _ = LegacyRegion.detect(body)
        for layout in [LegacyRegion.Layout.jessyJSON, .jessyText] {
            do {
                let region = try LegacyRegion(parsing: body, as: layout, file: "fuzz/region.mmap")
                for layer in region.layers {
                    let (end, overflow) = layer.offset.addingReportingOverflow(layer.size)
                    if overflow || end > UInt64(body.count) { fatalError("legacy \(layout) layer \(layer.id) outside the input: \(layer)") }
                }
                if region.warnings.contains(where: { $0.description.isEmpty }) { fatalError("empty warning") }
                // What the mount and import do next: v1 ids, checksums, the index. It may
                // refuse (an id with no v1 id), never crash; what it gives must be a valid index.
                do throws(FormatError) {
                    let (index, _) = try region.index(bytes: body, dimensionID: region.dimensionID ?? 1,
                                                      fallbackTime: Timestamp(seconds: 0), file: "fuzz/region.mmap")
                    if index.layers.contains(where: { $0.id == 0 }) { fatalError("legacy \(layout): v1 id 0") }
                    if index.layers.count != region.layers.count { fatalError("legacy \(layout): layers lost") }
                    _ = try DimensionIndex(parsing: index.serialized, file: "fuzz/index.json")
                } catch {
                    if error.description.isEmpty { fatalError("empty error message") }
                }
            } catch {
                if error.description.isEmpty { fatalError("empty error message") }
            }
        }
    }

    /// A Jessy JSON region of `count` layers (overflowing its 1024-byte header from about five
    /// layers on) and a Jessy text region, written here from the layout's description.
    static func legacySeeds() -> [[UInt8]] {
        var offset = 1024
        var items: [String] = [], contents: [UInt8] = []
        for i in 0..<6 {
            let content = Array("layer \(i): é ✓ \(String(repeating: "x", count: i * 7))\n".utf8)
            items.append("{\"layer_id\":{\"dimension\":3,\"layer\":\(i)},\"name\":\"l\(i)\",\"frequency\":1.5,\"depth\":\(i % 4),"
                         + "\"offset\":\(offset),\"size\":\(content.count),\"keywords\":[\"a\",\"ü\"],\"parent\":null,"
                         + "\"children\":[{\"dimension\":3,\"layer\":\(i + 1)}],\"last_accessed\":0,\"access_count\":\(i)}")
            offset += content.count
            contents += content
        }
        let metadata = "{\"version\":1,\"created_at\":1729771200,\"dimension_name\":\"Intention\",\"total_size\":\(offset),"
            + "\"content_offset\":1024,\"layers\":[\(items.joined(separator: ","))]}"
        var json = Array("JSON".utf8) + Array(metadata.utf8)
        while json.count < 1024 { json.append(0) }
        json += contents

        var text = "DIMENSION:03|NAME:Intentión|SIZE:16777216|LAYERS:2\n"
        for (i, content) in ["first, ascii\n", "sécond ✓ 🎉"].enumerated() {
            let line = "LAYER:\(i)|DEPTH:\(i)|FREQ:1.50|KEYWORDS:a,é|OFFSET:\(text.unicodeScalars.count)|SIZE:\(content.unicodeScalars.count)\n"
            text += line + content + "\n"
        }
        return [[2] + json, [2] + Array(text.utf8)]
    }

    /// Valid inputs to start from: a header and an index as `pack` writes them, and the two
    /// legacy layouts (selector 2: the index parser rejects them at once).
    static var seeds: [[UInt8]] {
        let header = RegionHeader(dimensionID: 3, layerCount: 2, totalSize: 12288, checksum: .zero).serialized
        let index = """
        {"dimension_id": 3, "dimension_name": "Intention", "version": 1, "created_at": "2024-10-24T12:00:00Z",
         "updated_at": "2024-10-24T12:00:00Z", "layer_count": 2, "total_size": 12288, "x": {"y": [1, 2.5e3, null]},
         "region_checksum": "sha256:\(String(repeating: "ab", count: 32))",
         "layers": [{"layer_id": 1, "offset": 4096, "size": 10, "checksum": "sha256:\(String(repeating: "0", count: 64))",
                     "frequency": 1.5, "keywords": ["a,b", "\\u00e9"], "updated_at": "2024-10-24T12:00:00Z"},
                    {"layer_id": 2, "offset": 8192, "size": 0, "checksum": "sha256:\(String(repeating: "f", count: 64))"}]}
        """
        return [[0] + header, [1] + Array(index.utf8)] + legacySeeds()
    }
}
