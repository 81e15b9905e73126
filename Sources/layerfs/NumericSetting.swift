/// A number the user gives (a mount option, its long spelling, an environment variable) and
/// the values it may take. Every such number is parsed here, before anything is mounted: the
/// daemon hands them on as narrower C types (a poll timeout as Int32, a sleep in microseconds
/// as useconds_t, a thread count as UInt32), where a value out of range would trap after the
/// mount exists, leaving it dead.
struct NumericSetting<Value: FixedWidthInteger & Sendable>: Sendable {
    let range: ClosedRange<Value>
    let unit: String

    /// `0 to 3600000 milliseconds`: plain digits, so that a user can copy a bound.
    var allowed: String { "\(range.lowerBound) to \(range.upperBound) \(unit)" }

    /// `spelling` is the setting as the user wrote it, for the message: `-o poll_interval=5`,
    /// `--poll-interval 5`, `MMAP_MAX_SIZE=5`.
    func parse(_ text: String, spelling: String) throws(SettingError) -> Value {
        let digits = text.first == "+" || text.first == "-" ? text.dropFirst() : Substring(text)
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw SettingError("\(spelling): not a whole number (\(allowed))")
        }
        // A well-formed number the type cannot hold (negative, or too many digits) is as much
        // out of range as one the type holds but the range excludes.
        guard let value = Value(text), range.contains(value) else {
            throw SettingError("\(spelling): out of range (\(allowed))")
        }
        return value
    }
}

/// The ranges. Each bound is a sensible ceiling and also keeps the daemon's conversions exact.
enum Limits {
    /// One hour. The watcher sleeps `ms * 1000` microseconds as a useconds_t (UInt32): the
    /// ceiling must stay under 4 294 967 ms, and an hour is already far past any useful poll.
    static let pollInterval = NumericSetting<Int>(range: 0...3_600_000, unit: "milliseconds")
    /// libfuse starts up to this many request threads; more than 1024 only costs memory.
    static let maxThreads = NumericSetting<UInt32>(range: 1...1024, unit: "threads")
    /// 1 GiB of readahead per request stream; the kernel takes any value, but beyond this it
    /// only evicts other pages.
    static let readaheadKB = NumericSetting<Int>(range: 0...1_048_576, unit: "KiB")
    /// At least one page (no region that pack writes is smaller, so a lower limit would refuse
    /// every one); at most 2^62 bytes (4 EiB), past any file a filesystem holds in practice and
    /// well inside off_t, which every size reaching a system call is converted to.
    static let maxRegionSize = NumericSetting<UInt64>(range: 4096...(1 << 62), unit: "bytes")
    /// The instants an RFC 3339 timestamp with a four-digit year can name from 1970 on: a
    /// later one would be written as a timestamp no reader accepts.
    static let sourceDateEpoch = NumericSetting<Int64>(range: 0...253_402_300_799, unit: "seconds since 1970-01-01T00:00:00Z")
}

/// A setting the user gave is refused; printed as `layerfs: <description>`, exit status 1.
struct SettingError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
