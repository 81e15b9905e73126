import Glibc

/// A point in time in whole seconds since the epoch, read and written as RFC 3339.
///
/// Written as `YYYY-MM-DDTHH:MM:SSZ` (UTC, whole seconds: the spec's one spelling, so that two
/// packs of the same input are byte-identical). Read more liberally: a fraction is dropped and a
/// numeric offset is applied, because older producers write both.
public struct Timestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var seconds: Int64

    public init(seconds: Int64) { self.seconds = seconds }

    public static func < (a: Timestamp, b: Timestamp) -> Bool { a.seconds < b.seconds }

    public static func now() -> Timestamp { Timestamp(seconds: Int64(time(nil))) }

    public var description: String { rfc3339 }

    public var rfc3339: String {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))Z"
    }

    /// Parses RFC 3339 (`2024-10-24T12:00:00Z`, `2024-10-24T12:00:00.5+02:00`); nil otherwise,
    /// and nil for a date or time that does not exist (2024-02-31, 24:00:00): timegm would
    /// quietly roll it over into another instant, so the text would not read back as written.
    /// A leap second (:60), which RFC 3339 allows, is refused too: POSIX time has no such
    /// second, so it could only be stored as a neighbouring one.
    public init?(rfc3339 text: String) {
        let b = Array(text.utf8)
        func num(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= b.count else { return nil }
            var v = 0
            for c in b[from..<from + count] {
                guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
                v = v * 10 + Int(c - UInt8(ascii: "0"))
            }
            return v
        }
        guard b.count >= 20, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"),
              b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t") || b[10] == UInt8(ascii: " "),
              b[13] == UInt8(ascii: ":"), b[16] == UInt8(ascii: ":"),
              let year = num(0, 4), let month = num(5, 2), let day = num(8, 2),
              let hour = num(11, 2), let minute = num(14, 2), let second = num(17, 2),
              (1...12).contains(month), (1...Timestamp.days(inMonth: month, of: year)).contains(day),
              hour < 24, minute < 60, second < 60
        else { return nil }
        var i = 19
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            let digits = i
            while i < b.count, b[i] >= UInt8(ascii: "0"), b[i] <= UInt8(ascii: "9") { i += 1 }
            guard i > digits else { return nil }
        }
        var offset = 0
        guard i < b.count else { return nil }
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            i += 1
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            guard b.count == i + 6, b[i + 3] == UInt8(ascii: ":"), let oh = num(i + 1, 2), let om = num(i + 4, 2),
                  oh < 24, om < 60 else { return nil }
            offset = (oh * 3600 + om * 60) * (b[i] == UInt8(ascii: "-") ? -1 : 1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        seconds = Int64(timegm(&parts)) - Int64(offset)
    }

    /// What every reader of a timestamp says when `init?(rfc3339:)` refuses one.
    public static func refusal(_ text: String) -> String {
        "\"\(text)\" is not an RFC 3339 timestamp of a date and time that exist, such as 2024-10-24T12:00:00Z"
    }

    /// Gregorian: February has 29 days in years divisible by 4, except centuries not
    /// divisible by 400 (2000 is a leap year, 1900 is not).
    static func days(inMonth month: Int, of year: Int) -> Int {
        switch month {
        case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}
