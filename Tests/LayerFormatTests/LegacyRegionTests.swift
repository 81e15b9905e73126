import XCTest
@testable import LayerFormat

/// Writers of Jessy's two region layouts, made from the description of what Jessy's code writes
/// (RegionBuilder::build_to_file with serde_json; scripts/init_mmap.py), not from the reader,
/// so that a misreading in the reader does not cancel out in the tests.
enum JessyWriter {
    struct Layer {
        var layer: UInt16
        var content: [UInt8]
        var name = "layer"
        var frequency = "1.5"      // as serde_json writes the f32 (ryu: "1.0", "0.5")
        var hundredths = 150       // FREQ for the text layout, written with "%.2f"
        var depth: UInt8 = 0
        var keywords: [String] = []
        var parent: UInt16?
        var children: [UInt16] = []
    }

    /// serde_json's string escaping: `"`, `\` and control characters; everything else raw UTF-8.
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case _ where u.value < 0x20:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    /// The metadata JSON, compact, fields in RegionMetadata/LayerInfo declaration order.
    static func metadata(dimension: UInt8, name: String, layers: [Layer], createdAt: UInt64 = 1_729_771_200,
                         recordedOffsets: [UInt64]? = nil) -> String {
        var offset: UInt64 = 1024
        var items: [String] = []
        for (i, l) in layers.enumerated() {
            let o = recordedOffsets?[i] ?? offset
            func ref(_ n: UInt16) -> String { "{\"dimension\":\(dimension),\"layer\":\(n)}" }
            items.append("{\"layer_id\":\(ref(l.layer)),\"name\":\(jsonString(l.name)),\"frequency\":\(l.frequency),\"depth\":\(l.depth),"
                + "\"offset\":\(o),\"size\":\(l.content.count),\"keywords\":[\(l.keywords.map(jsonString).joined(separator: ","))],"
                + "\"parent\":\(l.parent.map(ref) ?? "null"),\"children\":[\(l.children.map(ref).joined(separator: ","))],"
                + "\"last_accessed\":\(1_729_771_300 + UInt64(i)),\"access_count\":\(i * 3)}")
            offset += UInt64(l.content.count)
        }
        return "{\"version\":1,\"created_at\":\(createdAt),\"dimension_name\":\(jsonString(name)),\"total_size\":\(offset),"
            + "\"content_offset\":1024,\"layers\":[\(items.joined(separator: ","))]}"
    }

    /// build_to_file: "JSON", the metadata, zeros up to 1024 (none when the metadata is longer:
    /// Jessy's bug), then the contents back to back.
    static func jsonRegion(dimension: UInt8, name: String, layers: [Layer], metadataText: String? = nil) -> [UInt8] {
        var out = Array("JSON".utf8) + Array((metadataText ?? metadata(dimension: dimension, name: name, layers: layers)).utf8)
        while out.count < 1024 { out.append(0) }
        for l in layers { out += l.content }
        return out
    }

    /// init_mmap.py: Python text, so OFFSET and SIZE count code points (len()).
    static func textRegion(dimension: Int, name: String, capacity: Int = 16_777_216, layers: [Layer]) -> [UInt8] {
        let dim = dimension < 10 ? "0\(dimension)" : "\(dimension)"
        let header = "DIMENSION:\(dim)|NAME:\(name)|SIZE:\(capacity)|LAYERS:\(layers.count)\n"
        var text = header
        var offset = header.unicodeScalars.count
        for l in layers.sorted(by: { $0.layer < $1.layer }) {
            let content = String(decoding: l.content, as: UTF8.self)
            let frac = l.hundredths % 100
            let freq = "\(l.hundredths / 100).\(frac < 10 ? "0" : "")\(frac)"
            let line = "LAYER:\(l.layer)|DEPTH:\(l.depth)|FREQ:\(freq)|KEYWORDS:\(l.keywords.joined(separator: ","))|OFFSET:\(offset)|SIZE:\(content.unicodeScalars.count)\n"
            text += line + content + "\n"
            offset += line.unicodeScalars.count + content.unicodeScalars.count + 1
        }
        return Array(text.utf8)
    }

    static let samples: [String] = [
        "# Emotion - Layer 1\nDepth: 0 | Frequency: 1.50 Hz\n\nplain ASCII, with a | and the word JSON\n",
        "héllo wörld — ✓ 🎉 ünïcödé\n日本語のテキスト\n",
        "",
        "e\u{301} combining accent: two code points, one character",
        "ends with newlines\n\n",
    ]

    static func layers(_ n: Int) -> [Layer] {
        (0..<n).map { i in
            Layer(layer: UInt16(i), content: Array((samples[i % samples.count] + (i % 7 == 0 ? "" : " #\(i)")).utf8),
                  name: "layer \(i) \(i % 3 == 0 ? "naïve" : "plain")", frequency: ["0.5", "1.0", "2.25", "4.5"][i % 4],
                  hundredths: [50, 100, 225, 450][i % 4], depth: UInt8(i % 4),
                  keywords: i % 5 == 0 ? [] : ["k\(i)", "émotion"], parent: i == 0 ? nil : UInt16(i - 1),
                  children: i + 1 < n ? [UInt16(i + 1)] : [])
        }
    }
}

final class LegacyRegionTests: XCTestCase {
    let file = "consciousness/D03/region.mmap"

    func parse(_ bytes: [UInt8]) throws -> LegacyRegion { try LegacyRegion(parsing: bytes, file: file) }

    func parseError(_ bytes: [UInt8], file name: String? = nil) -> FormatError? {
        do { _ = try LegacyRegion(parsing: bytes, file: name ?? file); XCTFail("parsed"); return nil } catch { return error }
    }

    /// Every byte range holds exactly the content written, and every field came through.
    func assertMatches(_ region: LegacyRegion, _ bytes: [UInt8], _ layers: [JessyWriter.Layer], json: Bool,
                       line: UInt = #line) {
        XCTAssertEqual(region.layers.count, layers.count, line: line)
        let written = json ? layers : layers.sorted { $0.layer < $1.layer }
        for (index, (got, want)) in zip(region.layers, written).enumerated() {
            XCTAssertEqual(got.id, UInt32(want.layer), line: line)
            XCTAssertEqual(Array(bytes[Int(got.offset)..<Int(got.offset + got.size)]), want.content, "layer \(want.layer)", line: line)
            XCTAssertEqual(got.keywords, want.keywords, line: line)
            XCTAssertEqual(got.depth, UInt64(want.depth), line: line)
            if json {
                XCTAssertEqual(got.frequency, Double(want.frequency), line: line)
                XCTAssertEqual(got.name, want.name, line: line)
                XCTAssertEqual(got.parent, want.parent.map { .init(dimension: 3, layer: $0) }, line: line)
                XCTAssertEqual(got.children, want.children.map { .init(dimension: 3, layer: $0) }, line: line)
                XCTAssertEqual(got.lastAccessed, 1_729_771_300 + UInt64(index), line: line)
                XCTAssertEqual(got.accessCount, UInt64(index * 3), line: line)
            } else {
                XCTAssertEqual(got.frequency, Double(want.hundredths) / 100, line: line)
                XCTAssertNil(got.name, line: line)
                XCTAssertNil(got.parent, line: line)
                XCTAssertEqual(got.children, [], line: line)
                XCTAssertNil(got.lastAccessed, line: line)
            }
        }
        // The ranges tile the content area in order: nothing skipped, nothing shared.
        if json, let last = region.layers.last { XCTAssertEqual(last.offset + last.size, UInt64(bytes.count), line: line) }
    }

    // MARK: JSON layout

    func testJSONOneLayer() throws {
        let layers = JessyWriter.layers(1)
        let bytes = JessyWriter.jsonRegion(dimension: 3, name: "Intention", layers: layers)
        XCTAssertEqual(LegacyRegion.detect(bytes), .jessyJSON)
        let region = try parse(bytes)
        XCTAssertEqual(region.layout, .jessyJSON)
        XCTAssertEqual(region.dimensionID, 3)
        XCTAssertEqual(region.dimensionName, "Intention")
        XCTAssertEqual(region.createdAt, 1_729_771_200)
        XCTAssertEqual(region.warnings, [])
        XCTAssertEqual(region.layers.first?.offset, 1024)
        assertMatches(region, bytes, layers, json: true)
    }

    func testJSONNoLayers() throws {
        let bytes = JessyWriter.jsonRegion(dimension: 3, name: "Empty", layers: [])
        let region = try parse(bytes)
        XCTAssertEqual(region.layers, [])
        XCTAssertNil(region.dimensionID)
    }

    func testJSONEveryCountUpTo12AcrossTheOverflow() throws {
        var sawBoth = (fits: false, overflows: false)
        for n in 1...12 {
            let layers = JessyWriter.layers(n)
            let metadata = JessyWriter.metadata(dimension: 3, name: "Intention", layers: layers)
            let bytes = JessyWriter.jsonRegion(dimension: 3, name: "Intention", layers: layers)
            let region = try parse(bytes)
            assertMatches(region, bytes, layers, json: true)
            if metadata.utf8.count + 4 > 1024 {
                sawBoth.overflows = true
                XCTAssertEqual(region.warnings.count, 1, "\(n) layers")
                XCTAssertEqual(region.warnings.first?.field, "metadata")
                XCTAssertTrue(region.warnings.first?.description.hasPrefix(file + ": metadata: ") ?? false)
                XCTAssertEqual(region.layers.first?.offset, UInt64(4 + metadata.utf8.count))
            } else {
                sawBoth.fits = true
                XCTAssertEqual(region.warnings, [], "\(n) layers")
            }
        }
        XCTAssertTrue(sawBoth.fits && sawBoth.overflows)
    }

    func testJSON500LayersOverflowing() throws {
        let layers = JessyWriter.layers(500)
        let bytes = JessyWriter.jsonRegion(dimension: 3, name: "Intention ✓", layers: layers)
        let region = try parse(bytes)
        XCTAssertEqual(region.warnings.count, 1)
        XCTAssertEqual(region.dimensionName, "Intention ✓")
        XCTAssertEqual(region.dimensionID, 3)
        XCTAssertEqual(region.createdAt, 1_729_771_200)
        let metadata = JessyWriter.metadata(dimension: 3, name: "Intention ✓", layers: layers)
        XCTAssertEqual(region.layers.first?.offset, UInt64(4 + metadata.utf8.count))
        assertMatches(region, bytes, layers, json: true)
    }

    /// Metadata of exactly 1020 bytes fills the header with no zero byte: nothing is shifted,
    /// but Jessy sees no layers, so it is still reported.
    func testJSONMetadataExactlyFillingTheHeader() throws {
        let layers = JessyWriter.layers(2)
        var name = ""
        while JessyWriter.metadata(dimension: 3, name: name, layers: layers).utf8.count < 1020 { name += "x" }
        XCTAssertEqual(JessyWriter.metadata(dimension: 3, name: name, layers: layers).utf8.count, 1020)
        let bytes = JessyWriter.jsonRegion(dimension: 3, name: name, layers: layers)
        let region = try parse(bytes)
        XCTAssertEqual(region.warnings.count, 1)
        XCTAssertEqual(region.layers.first?.offset, 1024)
        assertMatches(region, bytes, layers, json: true)
    }

    // MARK: Text layout

    func testTextOneLayer() throws {
        let layers = JessyWriter.layers(1)
        let bytes = JessyWriter.textRegion(dimension: 3, name: "Intention", layers: layers)
        XCTAssertEqual(LegacyRegion.detect(bytes), .jessyText)
        let region = try parse(bytes)
        XCTAssertEqual(region.layout, .jessyText)
        XCTAssertEqual(region.dimensionID, 3)
        XCTAssertEqual(region.dimensionName, "Intention")
        XCTAssertEqual(region.declaredCapacity, 16_777_216)
        XCTAssertEqual(region.warnings, [])
        assertMatches(region, bytes, layers, json: false)
    }

    func testText500LayersNonASCII() throws {
        let layers = JessyWriter.layers(500).map { l -> JessyWriter.Layer in var l = l; l.layer += 1; return l }
        let bytes = JessyWriter.textRegion(dimension: 14, name: "Méta | cognition", layers: layers)
        let region = try parse(bytes)
        XCTAssertEqual(region.dimensionID, 14)
        XCTAssertEqual(region.dimensionName, "Méta | cognition")
        assertMatches(region, bytes, layers, json: false)
    }

    func testTextEmptyLayerAndKeywordsWithPipes() throws {
        var layers = JessyWriter.layers(3)
        layers[1].content = []
        layers[2].keywords = ["a|b", "ç"]
        let region = try parse(JessyWriter.textRegion(dimension: 1, name: "Emotion", layers: layers))
        XCTAssertEqual(region.layers[1].size, 0)
        XCTAssertEqual(region.layers[2].keywords, ["a|b", "ç"])
    }

    func testDetect() {
        XCTAssertNil(LegacyRegion.detect([]))
        XCTAssertNil(LegacyRegion.detect(Array("hello".utf8)))
        // A v1 region whose first layer says JSON is still v1.
        XCTAssertNil(LegacyRegion.detect(Array("MMAP".utf8) + [UInt8](repeating: 0, count: 252) + Array("JSON".utf8)))
        // A text region whose content says JSON is still text.
        XCTAssertEqual(LegacyRegion.detect(Array("DIMENSION:01|NAME:x|SIZE:1|LAYERS:0\nJSON".utf8)), .jessyText)
        // The marker beyond byte 1024 is not looked for, as in Jessy.
        XCTAssertNil(LegacyRegion.detect([UInt8](repeating: 0x20, count: 1021) + Array("JSON".utf8)))
    }

    // MARK: Bad files

    func testNeitherLayout() {
        XCTAssertError(parseError(Array("hello world".utf8)), .malformed, file: file, field: "header")
    }

    func testJSONShorterThanHeader() {
        XCTAssertError(parseError(Array("JSON{}".utf8)), .unusableFile, file: file, field: "header")
    }

    func testOverflowingMetadataWhoseLayersDoNotFit() {
        let layers = JessyWriter.layers(12)
        let bytes = JessyWriter.jsonRegion(dimension: 3, name: "x", layers: layers)
        XCTAssertError(parseError(bytes + [0x41]), .invalidValue, file: file, field: "layers")
        XCTAssertError(parseError(Array(bytes.dropLast())), .invalidValue, file: file, field: "layers")
    }

    func testOverflowingMetadataThatNeverCloses() {
        let bytes = Array("JSON{\"version\":1,\"x\":\"".utf8) + [UInt8](repeating: 0x61, count: 2000)
        XCTAssertError(parseError(bytes), .malformed, file: file, field: "metadata")
    }

    /// Writes a two-layer region with the metadata's offsets replaced.
    func jsonWithOffsets(_ offsets: [UInt64], ids: [UInt16] = [1, 2], totalSize: UInt64? = nil) -> [UInt8] {
        var layers = JessyWriter.layers(2)
        for i in 0..<2 { layers[i].layer = ids[i]; layers[i].content = Array("0123456789".utf8) }
        var text = JessyWriter.metadata(dimension: 3, name: "x", layers: layers, recordedOffsets: offsets)
        if let totalSize { text = text.replacingFirst("\"total_size\":1044", with: "\"total_size\":\(totalSize)") }
        return JessyWriter.jsonRegion(dimension: 3, name: "x", layers: layers, metadataText: text)
    }

    func testJSONValidOffsetsParse() throws {
        XCTAssertEqual(try parse(jsonWithOffsets([1024, 1034])).layers.map(\.offset), [1024, 1034])
    }

    func testJSONOffsetOutsideTheFile() {
        let e = parseError(jsonWithOffsets([1024, 5000]))
        XCTAssertError(e, .invalidValue, file: file, field: "layers[1].offset")
        XCTAssertEqual(e?.layerID, 2)
        XCTAssertError(parseError(jsonWithOffsets([1024, 1040])), .invalidValue, file: file, field: "layers[1].size")
        XCTAssertError(parseError(jsonWithOffsets([100, 1034])), .invalidValue, file: file, field: "layers[0].offset")
    }

    func testJSONOverlappingLayers() {
        XCTAssertError(parseError(jsonWithOffsets([1024, 1030])), .invalidValue, file: file, field: "layers[1].offset")
    }

    func testJSONDuplicateIDs() {
        XCTAssertError(parseError(jsonWithOffsets([1024, 1034], ids: [4, 4])), .invalidValue, file: file, field: "layers[1].layer_id.layer")
    }

    func testJSONTotalSizeNotTheFileSize() {
        XCTAssertError(parseError(jsonWithOffsets([1024, 1034], totalSize: 1043)), .mismatch, file: file, field: "total_size")
    }

    func testJSONBadFieldsNameTheirPath() {
        var layers = JessyWriter.layers(1)
        layers[0].depth = 0
        let text = JessyWriter.metadata(dimension: 3, name: "x", layers: layers).replacingFirst("\"depth\":0", with: "\"depth\":300")
        XCTAssertError(parseError(JessyWriter.jsonRegion(dimension: 3, name: "x", layers: layers, metadataText: text)),
                       .invalidValue, file: file, field: "layers[0].depth")
        let v2 = JessyWriter.metadata(dimension: 3, name: "x", layers: layers).replacingFirst("\"version\":1", with: "\"version\":2")
        XCTAssertError(parseError(JessyWriter.jsonRegion(dimension: 3, name: "x", layers: layers, metadataText: v2)),
                       .invalidValue, file: file, field: "version")
    }

    func text(_ s: String) -> [UInt8] { Array(s.utf8) }

    func testTextOffsetWrong() {
        let e = parseError(text("DIMENSION:03|NAME:x|SIZE:1|LAYERS:1\nLAYER:1|DEPTH:0|FREQ:1.00|KEYWORDS:|OFFSET:5|SIZE:2\nab\n"))
        XCTAssertError(e, .invalidValue, file: file, field: "layers[0].OFFSET")
        XCTAssertEqual(e?.layerID, 1)
    }

    func testTextSizePastTheEnd() {
        XCTAssertError(parseError(text("DIMENSION:03|NAME:x|SIZE:1|LAYERS:1\nLAYER:1|DEPTH:0|FREQ:1.00|KEYWORDS:|OFFSET:36|SIZE:9\nab\n")),
                       .invalidValue, file: file, field: "layers[0].SIZE")
    }

    /// A SIZE counted in bytes (2 for "é") overruns the content by a character: the newline
    /// that ends every layer is not where it must be.
    func testTextSizeCountedInBytes() {
        XCTAssertError(parseError(text("DIMENSION:03|NAME:x|SIZE:1|LAYERS:1\nLAYER:1|DEPTH:0|FREQ:1.00|KEYWORDS:|OFFSET:36|SIZE:2\né\nX")),
                       .invalidValue, file: file, field: "layers[0].SIZE")
    }

    func testTextDuplicateIDs() {
        var layers = JessyWriter.layers(2)
        layers[1].layer = layers[0].layer
        XCTAssertError(parseError(JessyWriter.textRegion(dimension: 3, name: "x", layers: layers)),
                       .invalidValue, file: file, field: "layers[1].LAYER")
    }

    func testTextInvalidUTF8() {
        let good = text("DIMENSION:03|NAME:x|SIZE:1|LAYERS:1\nLAYER:1|DEPTH:0|FREQ:1.00|KEYWORDS:|OFFSET:36|SIZE:3\nabc\n")
        var bad = good
        bad[bad.count - 3] = 0xFF
        XCTAssertError(parseError(bad), .malformed, file: file, field: "layers[0].content")
        var badHeader = good
        badHeader[20] = 0xC0 // in NAME
        XCTAssertError(parseError(badHeader), .malformed, file: file, field: "header")
    }

    /// The file ends inside "é": the count of 2 characters ends inside a multi-byte character.
    func testTextCountEndingInsideAMultiByteCharacter() {
        let bytes = text("DIMENSION:03|NAME:x|SIZE:1|LAYERS:1\nLAYER:1|DEPTH:0|FREQ:1.00|KEYWORDS:|OFFSET:36|SIZE:2\naé\n")
        let e = parseError(Array(bytes.dropLast(2)))
        XCTAssertError(e, .invalidValue, file: file, field: "layers[0].SIZE")
        XCTAssertTrue(e?.message.contains("inside a multi-byte character") ?? false, "\(String(describing: e))")
    }

    func testTextLayerCountWrong() {
        XCTAssertError(parseError(text("DIMENSION:03|NAME:x|SIZE:1|LAYERS:2\nLAYER:1|DEPTH:0|FREQ:1.00|KEYWORDS:|OFFSET:36|SIZE:2\nab\n")),
                       .mismatch, file: file, field: "header.LAYERS")
    }

    func testTextBadHeaderFields() {
        XCTAssertError(parseError(text("DIMENSION:x3|NAME:x|SIZE:1|LAYERS:0\n")), .invalidValue, file: file, field: "header.DIMENSION")
        XCTAssertError(parseError(text("DIMENSION:03|NAME:x|SIZE:1\n")), .malformed, file: file, field: "header")
        XCTAssertError(parseError(text("DIMENSION:03|NAME:x|SIZE:1|LAYERS:0")), .malformed, file: file, field: "header")
        XCTAssertError(parseError(text("DIMENSION:03|NAME:x|SIZE:1|LAYERS:1\nLAYER:1|DEPTH:0|FREQ:0x10|KEYWORDS:|OFFSET:36|SIZE:0\n\n")),
                       .invalidValue, file: file, field: "layers[0].FREQ")
    }
}
