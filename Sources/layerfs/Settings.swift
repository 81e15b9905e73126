import ArgumentParser
import Glibc
import LayerFormat

/// The environment the command reads, in one place: MMAP_BASE_PATH, MMAP_MAX_SIZE,
/// SOURCE_DATE_EPOCH. (MMAP_INITIAL_SIZE has no meaning: a region is written once, whole.)
enum Settings {
    static func environment(_ name: String) -> String? {
        guard let v = getenv(name) else { return nil }
        let s = String(cString: v)
        return s.isEmpty ? nil : s
    }

    /// BASE given on the command line, else $MMAP_BASE_PATH, else data/mmap.
    static func base(_ argument: String?) -> String {
        argument ?? environment("MMAP_BASE_PATH") ?? "data/mmap"
    }

    /// --max-region-size, else $MMAP_MAX_SIZE (bytes), else no limit.
    static func maxRegionSize(_ option: String?) throws(SettingError) -> UInt64? {
        if let option { return try Limits.maxRegionSize.parse(option, spelling: "--max-region-size \(option)") }
        return try maxRegionSizeFromEnvironment()
    }

    /// $MMAP_MAX_SIZE, checked like the option it stands in for; nil when unset.
    static func maxRegionSizeFromEnvironment() throws(SettingError) -> UInt64? {
        guard let text = environment("MMAP_MAX_SIZE") else { return nil }
        return try Limits.maxRegionSize.parse(text, spelling: "MMAP_MAX_SIZE=\(text)")
    }

    /// --time T, else $SOURCE_DATE_EPOCH, else now.
    static func time(_ option: String?) throws(SettingError) -> Timestamp {
        if let option {
            guard let t = Timestamp(rfc3339: option) else { throw SettingError("--time: " + Timestamp.refusal(option)) }
            return t
        }
        if let text = environment("SOURCE_DATE_EPOCH") {
            return Timestamp(seconds: try Limits.sourceDateEpoch.parse(text, spelling: "SOURCE_DATE_EPOCH=\(text)"))
        }
        return Timestamp.now()
    }

    /// --wait SECONDS: how long a writer waits for another one's writer lock (spec rule 4);
    /// 0 tries once. Fractions are allowed (`0.5`); more than a day is a mistake.
    static func wait(_ option: String?) throws(SettingError) -> Double {
        guard let option else { return defaultWait }
        let allowed = "0 to 86400 seconds, e.g. 10 or 0.5"
        guard !option.isEmpty, option.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }), let value = Double(option) else {
            if option.hasPrefix("-"), Double(option) != nil { throw SettingError("--wait \(option): out of range (\(allowed))") }
            throw SettingError("--wait \(option): not a number of seconds (\(allowed))")
        }
        guard value.isFinite, value <= 86_400 else { throw SettingError("--wait \(option): out of range (\(allowed))") }
        return value
    }

    /// Long enough for a pack of a few GiB next door to finish, short enough that a stuck
    /// writer is reported while the user still waits for an answer.
    static let defaultWait = 10.0

    /// Runs `body`; a refused setting becomes its `layerfs:` line and exit status 1, as every
    /// other refusal of the command line does.
    static func checked<T>(_ body: () throws(SettingError) -> T) throws(ExitCode) -> T {
        do {
            return try body()
        } catch {
            printError(error.description)
            throw ExitCode.failure
        }
    }

    static var stderrIsTerminal: Bool { isatty(STDERR_FILENO) == 1 }

    /// Every refusal of a command's own (pack, update, import) is a `layerfs: ...` line and exit
    /// status 1, as the settings' are (`checked`); only what ArgumentParser itself cannot parse (an
    /// unknown option, `--dimension abc`) gets its usage text. Thrown by the caller.
    static func refusal(_ message: String) -> ExitCode {
        printError(message)
        return ExitCode.failure
    }

    static func printError(_ message: String) {
        writeStderr("layerfs: " + message + "\n")
    }

    /// Writes to fd 2 directly: C's `stderr` is not concurrency-safe in Swift 6.
    static func writeStderr(_ text: String) {
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { b in _ = write(STDERR_FILENO, b.baseAddress, b.count) }
    }
}

/// A one-line progress display on stderr, shown only on a terminal and only for big jobs.
final class Progress: @unchecked Sendable {
    // @unchecked: used from one thread at a time.
    private let label: String
    private var lastShown: UInt64 = 0
    private var shown = false

    init(label: String) { self.label = label }

    func update(_ done: UInt64, _ total: UInt64) {
        guard Settings.stderrIsTerminal, total > 0 else { return }
        let percent = done * 100 / total
        guard percent != lastShown || !shown else { return }
        lastShown = percent
        shown = true
        Settings.writeStderr("\r\(label): \(percent)%")
    }

    func finish() {
        if shown { Settings.writeStderr("\r\u{1B}[K") }
    }
}
