import Glibc
import XCTest
@testable import LayerFormat

/// A scratch volume in a temporary directory, built with the real writer, for tests to break.
final class Fixture {
    let base: String

    init() {
        var template = Array("/tmp/layerfs-test-XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        base = String(cString: p!)
        _ = try? VolumeSetup.initialize(base: base, sample: false, time: Fixture.time)
    }

    deinit { SystemCalls.removeTree(base) }

    static let time = Timestamp(rfc3339: "2024-10-24T12:00:00Z")!

    var volume: Volume { Volume(base: base) }

    func location(_ id: UInt32) -> DimensionLocation {
        let name = DimensionLocation.directoryName(for: id)
        return DimensionLocation(kind: .consciousness(id), directory: base + "/consciousness/" + name, displayPath: "consciousness/" + name)
    }

    /// Writes `contents` as files layer-001.. in a scratch directory and packs them into D`id`.
    @discardableResult
    func pack(_ id: UInt32, _ contents: [String], time: Timestamp = Fixture.time, fileByFile: Bool = false) throws -> Packer.Result {
        let input = base + "/temp/input-\(id)-\(UInt32.random(in: 0...UInt32.max))"
        XCTAssertEqual(mkdir(input, 0o755), 0)
        defer { SystemCalls.removeTree(input) }
        var sources: [PackLayerSource] = []
        for (i, text) in contents.enumerated() {
            let path = input + "/" + PackInput.fileName(forLayer: UInt32(i + 1))
            try write(path, Array(text.utf8))
            sources.append(PackLayerSource(id: UInt32(i + 1), path: path, size: UInt64(text.utf8.count),
                                           frequency: Double(i) + 0.5, keywords: ["k\(i)", "a,b"], updatedAt: time))
        }
        var options = Packer.Options(time: time)
        options.fileByFile = fileByFile
        return try Packer.pack(sources, into: location(id), options: options)
    }

    func write(_ path: String, _ bytes: [UInt8]) throws {
        try Packer.writeFile(path, bytes, display: path)
    }

    func read(_ path: String) throws -> [UInt8] {
        try SystemCalls.readFile(path, display: path).bytes
    }

    /// Rewrites the index of D`id` after `change`.
    func editIndex(_ id: UInt32, _ change: (inout DimensionIndex) -> Void) throws {
        let path = location(id).indexPath
        var index = try DimensionIndex(parsing: try read(path), file: path)
        change(&index)
        try write(path, index.serialized)
    }

    /// Rewrites the index text of D`id`.
    func editIndexText(_ id: UInt32, _ change: (String) -> String) throws {
        let path = location(id).indexPath
        try write(path, Array(change(String(decoding: try read(path), as: UTF8.self)).utf8))
    }

    /// Patches bytes of D`id`'s region.
    func patchRegion(_ id: UInt32, at offset: Int, _ bytes: [UInt8]) throws {
        let path = location(id).regionPath
        var region = try read(path)
        region.replaceSubrange(offset..<offset + bytes.count, with: bytes)
        try write(path, region)
    }

    /// Loads D`id`, expecting a failure; returns it.
    func loadError(_ id: UInt32, maxRegionSize: UInt64? = nil, file: StaticString = #filePath, line: UInt = #line) -> FormatError? {
        do {
            _ = try Generation.load(location(id), maxRegionSize: maxRegionSize)
            XCTFail("expected D\(id) to fail to load", file: file, line: line)
            return nil
        } catch {
            return error
        }
    }
}

func XCTAssertError(_ error: FormatError?, _ kind: FormatError.Kind, file expectedFile: String, field: String,
                    file: StaticString = #filePath, line: UInt = #line) {
    guard let error else { return }
    XCTAssertEqual(error.kind, kind, "\(error)", file: file, line: line)
    XCTAssertTrue(error.file.hasSuffix(expectedFile), "file in \(error)", file: file, line: line)
    XCTAssertEqual(error.field, field, "field in \(error)", file: file, line: line)
    XCTAssertTrue(error.description.contains(expectedFile), file: file, line: line)
}
