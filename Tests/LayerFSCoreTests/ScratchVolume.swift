import Glibc
@testable import LayerFormat

/// Temporary directories for the core's tests, and volumes in them written by the real writer
/// (`layerfs init`'s `VolumeSetup`). The caller removes them (`SystemCalls.removeTree`).
enum ScratchVolume {
    /// A fresh directory `PARENT/layerfs-NAME-XXXXXX`.
    static func directory(_ name: String, in parent: String = "/tmp") throws -> String {
        var template = Array("\(parent)/layerfs-\(name)-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw FormatError(.unusableFile, file: parent, "mkdtemp failed")
        }
        return String(cString: made)
    }

    /// A volume made by `init` (with the sample dimensions or empty ones) at a fixed time.
    static func make(_ name: String, sample: Bool) throws -> String {
        let base = try directory(name)
        _ = try VolumeSetup.initialize(base: base, sample: sample, time: Timestamp(seconds: 1_700_000_000))
        return base
    }
}
