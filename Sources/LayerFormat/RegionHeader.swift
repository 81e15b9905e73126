/// The 256-byte header at the start of every region.mmap. All integers little-endian.
///
/// | offset | size | field        |
/// |--------|------|--------------|
/// | 0      | 4    | magic "MMAP" |
/// | 4      | 4    | version (1)  |
/// | 8      | 4    | dimension_id |
/// | 12     | 4    | layer_count  |
/// | 16     | 8    | total_size   |
/// | 24     | 32   | checksum: SHA-256 of bytes [256, total_size) |
/// | 56     | 200  | reserved     |
public struct RegionHeader: Equatable, Sendable {
    public static let size = 256
    public static let magic: [UInt8] = Array("MMAP".utf8)
    public static let currentVersion: UInt32 = 1

    public var version: UInt32
    public var dimensionID: UInt32
    public var layerCount: UInt32
    public var totalSize: UInt64
    public var checksum: Digest256

    public init(dimensionID: UInt32, layerCount: UInt32, totalSize: UInt64, checksum: Digest256) {
        self.version = RegionHeader.currentVersion
        self.dimensionID = dimensionID
        self.layerCount = layerCount
        self.totalSize = totalSize
        self.checksum = checksum
    }

    /// Parses and checks the fields that need nothing else to check: magic and version.
    /// Agreement with the file size and the index is checked by `Generation`.
    public init(parsing bytes: UnsafeRawBufferPointer, file: String) throws(FormatError) {
        guard bytes.count >= RegionHeader.size else {
            throw FormatError(.unusableFile, file: file, field: "header",
                              "file is \(bytes.count) bytes, shorter than the \(RegionHeader.size)-byte header")
        }
        guard Array(bytes[0..<4]) == RegionHeader.magic else {
            let found = bytes[0..<4].map { String($0, radix: 16) }.joined(separator: " ")
            throw FormatError(.malformed, file: file, field: "header.magic", "expected 4d 4d 41 50 (\"MMAP\"), found \(found)")
        }
        version = bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self).littleEndian
        guard version == RegionHeader.currentVersion else {
            throw FormatError(.invalidValue, file: file, field: "header.version", "unsupported version \(version) (this layerfs reads version 1)")
        }
        dimensionID = bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self).littleEndian
        layerCount = bytes.loadUnaligned(fromByteOffset: 12, as: UInt32.self).littleEndian
        totalSize = bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self).littleEndian
        checksum = Digest256(bytes: UnsafeRawBufferPointer(rebasing: bytes[24..<56]))
    }

    /// The 256 bytes as written: reserved bytes zero.
    public var serialized: [UInt8] {
        var out = [UInt8](repeating: 0, count: RegionHeader.size)
        out.replaceSubrange(0..<4, with: RegionHeader.magic)
        func put<T: FixedWidthInteger>(_ v: T, at offset: Int) {
            withUnsafeBytes(of: v.littleEndian) { out.replaceSubrange(offset..<offset + MemoryLayout<T>.size, with: $0) }
        }
        put(version, at: 4)
        put(dimensionID, at: 8)
        put(layerCount, at: 12)
        put(totalSize, at: 16)
        out.replaceSubrange(24..<56, with: checksum.bytes)
        return out
    }
}
