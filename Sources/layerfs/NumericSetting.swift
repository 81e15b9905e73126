import LayerFormat

/// A number the user gives (a mount option, its long spelling, an environment variable) and
/// the values it may take. Every such number is parsed here, before anything is mounted: the
/// daemon hands them on as narrower C types (a poll timeout as Int32, a sleep in microseconds
/// as useconds_t, a thread count as UInt32), where a value out of range would trap after the
/// mount exists, leaving it dead.
struct NumericSetting<Value: FixedWidthInteger & Sendable>: Sendable {
    let range: ClosedRange<Value>
    let unit: String
    /// 8 for modes and masks, written in octal as chmod and umask take them.
    var radix = 10
    /// Sizes in bytes also take binary multiples (64K, 10M, 1G), as pack's do (`ByteSize`).
    var acceptsSizeSuffix = false

    /// `0 to 3600000 milliseconds`: plain digits, so that a user can copy a bound.
    var allowed: String {
        radix == 8 ? "0\(String(range.lowerBound, radix: 8)) to 0\(String(range.upperBound, radix: 8)) \(unit)"
            : "\(range.lowerBound) to \(range.upperBound) \(unit)"
    }

    /// `spelling` is the setting as the user wrote it, for the message: `-o poll_interval=5`,
    /// `--poll-interval 5`, `MMAP_MAX_SIZE=5`.
    func parse(_ text: String, spelling: String) throws(SettingError) -> Value {
        if acceptsSizeSuffix {
            let bytes: UInt64
            do throws(ByteSize.Refusal) {
                bytes = try ByteSize.parse(text)
            } catch .malformed {
                throw SettingError("\(spelling): not a size (\(ByteSize.syntax); \(allowed))")
            } catch {
                throw SettingError("\(spelling): out of range (\(allowed))")
            }
            guard let value = Value(exactly: bytes), range.contains(value) else {
                throw SettingError("\(spelling): out of range (\(allowed))")
            }
            return value
        }
        let digits = text.first == "+" || text.first == "-" ? text.dropFirst() : Substring(text)
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && ($0.hexDigitValue ?? radix) < radix }) else {
            throw SettingError("\(spelling): not a whole number (\(allowed))")
        }
        // A well-formed number the type cannot hold (negative, or too many digits) is as much
        // out of range as one the type holds but the range excludes.
        guard let value = Value(text, radix: radix), range.contains(value) else {
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
    /// Bytes pushed into the kernel's cache ahead of a reader walking small layers, per READ.
    static let prefetchKB = NumericSetting<Int>(range: 0...1_048_576, unit: "KiB")
    /// Bytes of one large layer pushed into the kernel's cache while it is read at random.
    static let prefetchRandomMB = NumericSetting<Int>(range: 0...1_048_576, unit: "MiB")
    /// At least one page (no region that pack writes is smaller, so a lower limit would refuse
    /// every one); at most 2^62 bytes (4 EiB), past any file a filesystem holds in practice and
    /// well inside off_t, which every size reaching a system call is converted to.
    static let maxRegionSize = NumericSetting<UInt64>(range: 4096...(1 << 62), unit: "bytes", acceptsSizeSuffix: true)
    /// The instants an RFC 3339 timestamp with a four-digit year can name from 1970 on: a
    /// later one would be written as a timestamp no reader accepts.
    /// A user or group id; 4294967295 is (uid_t)-1, "no change" to chown, never an owner.
    static let owner = NumericSetting<UInt32>(range: 0...4_294_967_294, unit: "(a numeric id)")
    /// Permission bits, in octal; set-id and sticky bits are accepted and never shown.
    static let mode = NumericSetting<UInt32>(range: 0...0o7777, unit: "(octal)", radix: 8)
    static let umask = NumericSetting<UInt32>(range: 0...0o777, unit: "(octal)", radix: 8)
    static let sourceDateEpoch = NumericSetting<Int64>(range: 0...253_402_300_799, unit: "seconds since 1970-01-01T00:00:00Z")
}

/// A setting the user gave is refused; printed as `layerfs: <description>`, exit status 1.
struct SettingError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
