import XCTest
@testable import LayerFormat

final class ByteSizeTests: XCTestCase {
    func testPlainBytesAndBinaryMultiples() throws {
        XCTAssertEqual(try ByteSize.parse("4096"), 4096)
        XCTAssertEqual(try ByteSize.parse("0"), 0)
        XCTAssertEqual(try ByteSize.parse("0004096"), 4096)
        XCTAssertEqual(try ByteSize.parse("64K"), 65_536)
        XCTAssertEqual(try ByteSize.parse("64k"), 65_536)
        XCTAssertEqual(try ByteSize.parse("64KiB"), 65_536)
        XCTAssertEqual(try ByteSize.parse("10M"), 10 << 20)
        XCTAssertEqual(try ByteSize.parse("10MiB"), 10 << 20)
        XCTAssertEqual(try ByteSize.parse("1G"), 1 << 30)
        XCTAssertEqual(try ByteSize.parse("1g"), 1 << 30)
        XCTAssertEqual(try ByteSize.parse("3T"), 3 << 40)
        XCTAssertEqual(try ByteSize.parse("4P"), 4 << 50)
        XCTAssertEqual(try ByteSize.parse("4E"), 1 << 62)
        XCTAssertEqual(try ByteSize.parse("15E"), 15 << 60)
        XCTAssertEqual(try ByteSize.parse("18446744073709551615"), UInt64.max)
    }

    func testMalformed() {
        for text in ["", "K", "-", "10MB", "10mb", "10B", "1.5G", "1,000", " 10", "10 ", "10 M", "10Ki", "10KIB", "+10", "0x10",
                     "10X", "10MM", "ß", "1ß", "١٢", "10\u{0}"] {
            XCTAssertThrowsError(try ByteSize.parse(text), text) { error in
                XCTAssertEqual(error as? ByteSize.Refusal, .malformed, text)
            }
        }
    }

    func testOutOfRange() {
        // Negative sizes and sizes of 2^64 bytes or more: well formed, but no UInt64 holds them.
        for text in ["-1", "-4096", "-1G", "18446744073709551616", "99999999999999999999999", "16E", "16384P", "17179869184G"] {
            XCTAssertThrowsError(try ByteSize.parse(text), text) { error in
                XCTAssertEqual(error as? ByteSize.Refusal, .outOfRange, text)
            }
        }
        XCTAssertEqual(try ByteSize.parse("-0"), 0, "minus zero is zero")
    }
}
