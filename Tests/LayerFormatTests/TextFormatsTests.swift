import XCTest
@testable import LayerFormat

final class TextFormatsTests: XCTestCase {
    func testKeywordsEscapingRoundTrips() {
        let lists: [[String]] = [[], ["a"], ["a", "b"], ["a,b", "c\\d", ""], ["\\", ","], ["x\\,y"]]
        for list in lists {
            XCTAssertEqual(Keywords.split(Keywords.join(list)), list, "\(list)")
        }
        XCTAssertEqual(Keywords.join(["a,b", "c\\d"]), "a\\,b,c\\\\d")
        XCTAssertEqual(Keywords.join([]), "")
    }

    func testFrequencyIsShortestRoundTrip() {
        XCTAssertEqual(Frequency.format(1.5), "1.5")
        XCTAssertEqual(Frequency.format(2.0), "2.0")
        XCTAssertEqual(Frequency.format(1e-05), "1e-05")
        XCTAssertEqual(Frequency.format(0.1), "0.1")
        for v in [0.1, 1.0 / 3.0, 123456.789, 5e-324, 1.7976931348623157e308] {
            XCTAssertEqual(Frequency.parse(Frequency.format(v)), v)
        }
        XCTAssertNil(Frequency.parse("nan"))
        XCTAssertNil(Frequency.parse("abc"))
    }

    func testTimestamps() {
        let t = Timestamp(rfc3339: "2024-10-24T12:00:00Z")
        XCTAssertEqual(t?.seconds, 1_729_771_200)
        XCTAssertEqual(t?.rfc3339, "2024-10-24T12:00:00Z")
        XCTAssertEqual(Timestamp(rfc3339: "2024-10-24T14:00:00.250+02:00")?.rfc3339, "2024-10-24T12:00:00Z")
        for bad in ["", "2024-10-24", "2024-10-24T12:00:00", "2024-13-01T00:00:00Z", "2024-10-24T12:00:00Zjunk", "yesterday"] {
            XCTAssertNil(Timestamp(rfc3339: bad), bad)
        }
    }

    func testTimestampsAreRealDatesAndTimes() {
        let refused = [
            "2024-02-31T00:00:00Z", "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2024-04-31T00:00:00Z",
            "2024-13-01T00:00:00Z", "2024-00-10T00:00:00Z", "2024-01-00T00:00:00Z", "2024-01-32T00:00:00Z",
            "2024-01-01T24:00:00Z", "2024-01-01T23:60:00Z", "2024-01-01T23:59:60Z", "2016-12-31T23:59:60Z",
            "2024-02-30T12:00:00+02:00", "2023-02-29 10:00:00.5z",
        ]
        for text in refused { XCTAssertNil(Timestamp(rfc3339: text), text) }
        let accepted = [
            ("2024-02-29T00:00:00Z", 1_709_164_800), ("2000-02-29T12:00:00Z", 951_825_600),
            ("2023-02-28T23:59:59Z", 1_677_628_799), ("2024-12-31T23:59:59Z", 1_735_689_599),
            ("2024-04-30T00:00:00Z", 1_714_435_200), ("1970-01-01T00:00:00Z", 0),
        ]
        for (text, seconds) in accepted {
            let t = Timestamp(rfc3339: text)
            XCTAssertEqual(t?.seconds, Int64(seconds), text)
            XCTAssertEqual(t?.rfc3339, text, "reads back as written")
        }
    }

    func testNonexistentDateInAnIndexIsRefused() throws {
        let fx = Fixture()
        try fx.pack(2, ["alpha"])
        try fx.editIndexText(2) { $0.replacingFirst("\"created_at\": \"2024-10-24T12:00:00Z\"", with: "\"created_at\": \"2024-02-31T12:00:00Z\"") }
        XCTAssertError(fx.loadError(2), .invalidValue, file: "D02/index.json", field: "created_at")
    }

    func testChecksumSpelling() {
        let hex = String(repeating: "0123456789abcdef", count: 4)
        let d = Digest256(checksumString: "sha256:" + hex)
        XCTAssertEqual(d?.hex, hex)
        XCTAssertEqual(d?.checksumString, "sha256:" + hex)
        XCTAssertNil(Digest256(checksumString: "sha256:" + hex.uppercased()))
        XCTAssertNil(Digest256(checksumString: "sha256:" + hex + "0"))
        XCTAssertNil(Digest256(checksumString: hex))
    }

    func testHeaderRoundTrip() throws {
        let h = RegionHeader(dimensionID: 3, layerCount: 7, totalSize: 1 << 40, checksum: Digest256(w0: 1, w1: 2, w2: 3, w3: 4))
        let bytes = h.serialized
        XCTAssertEqual(bytes.count, 256)
        XCTAssertEqual(Array(bytes[0..<4]), [0x4D, 0x4D, 0x41, 0x50])
        XCTAssertEqual(bytes[8], 3)
        XCTAssertTrue(bytes[56...].allSatisfy { $0 == 0 })
        let parsed = try bytes.withUnsafeBytes { try RegionHeader(parsing: $0, file: "x") }
        XCTAssertEqual(parsed, h)
    }

    func testJSONStringsAndUnknownFields() throws {
        let text = #"""
        { "dimension_id": 1, "version": 1, "layer_count": 1, "total_size": 8192, "future": {"a": [1, 2.5e3, null, true]},
          "dimension_name": "Caf\u00e9 \ud83d\ude00 \"q\" \\ \/ \n",
          "layers": [ { "layer_id": 4294967295, "offset": 4096, "size": 0,
            "checksum": "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "keywords": ["a,b", "\u0041"], "frequency": -1.5e-3, "note": "kept" } ] }
        """#
        let index = try DimensionIndex(parsing: Array(text.utf8), file: "index.json")
        XCTAssertEqual(index.dimensionName, "Café 😀 \"q\" \\ / \n")
        XCTAssertEqual(index.layers[0].id, UInt32.max)
        XCTAssertEqual(index.layers[0].keywords, ["a,b", "A"])
        XCTAssertEqual(index.layers[0].frequency, -0.0015)
        XCTAssertEqual(index.extraFields.map(\.key), ["future"])
        XCTAssertEqual(index.extraFields[0].json, #"{"a": [1, 2.5e3, null, true]}"#)
        XCTAssertEqual(index.layers[0].extraFields[0].json, "\"kept\"")
        // Written back and read again, it is the same index.
        let again = try DimensionIndex(parsing: index.serialized, file: "index.json")
        XCTAssertEqual(again, index)
    }

    func testJSONRejectsHostileNesting() {
        let deep = "{\"x\": " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}"
        XCTAssertThrowsError(try DimensionIndex(parsing: Array(deep.utf8), file: "index.json")) { error in
            XCTAssertTrue("\(error)".contains("nesting"), "\(error)")
        }
        for bad in ["", "{", "[]", "{\"a\" 1}", "{\"version\": 1} x", "{\"a\": \"\u{01}\"}", "{\"a\": 01}", "{\"a\": \"\\ud800\"}", "{\"a\": tru}"] {
            XCTAssertThrowsError(try DimensionIndex(parsing: Array(bad.utf8), file: "index.json"), bad)
        }
    }
}
