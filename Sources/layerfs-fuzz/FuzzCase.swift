import LayerFormat

/// One fuzz case: the header parser, the index parser and the layer rules on arbitrary bytes.
/// The first byte picks the parser so one corpus covers all three. Every rejection must be a
/// `FormatError` (the typed throws guarantee it); a crash or a hang is a finding.
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
    }

    /// Valid inputs to start from: a header and an index as `pack` writes them.
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
        return [[0] + header, [1] + Array(index.utf8)]
    }
}
