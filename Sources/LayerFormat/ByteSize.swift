/// A size the user writes, in bytes: `4096`, or with a binary multiple, `64K`, `10M`, `1G`.
///
/// One parser for every command that takes a size (pack's and the mount's
/// `--max-region-size`), so that a size means the same wherever it is given. The caller checks
/// the range and words the message, because only it knows how the user spelled the setting.
public enum ByteSize {
    public enum Refusal: Error, Equatable, Sendable {
        /// Not a size at all: empty, a fraction, an unknown unit, spaces.
        case malformed
        /// A well-formed size that no UInt64 holds: negative, or 2^64 bytes or more.
        case outOfRange
    }

    /// How a size is written, for messages.
    public static let syntax = "a whole number of bytes, or of KiB, MiB, GiB, TiB, PiB or EiB written with K, M, G, T, P or E: 4096, 64K, 10M, 1G"

    /// The units, each a power of 1024. SI units (kB = 1000) are not offered: `10MB` would be
    /// ambiguous, so it is refused rather than guessed.
    static let shifts: [Character: UInt64] = ["K": 10, "M": 20, "G": 30, "T": 40, "P": 50, "E": 60]

    /// Parses `DIGITS[UNIT[iB]]`: UNIT is one of K M G T P E in either case; `iB` may follow
    /// it (`64KiB`). A leading `-` followed by a valid size is out of range, not malformed, so
    /// that `-1` is reported like any other value the range excludes.
    public static func parse(_ text: String) throws(Refusal) -> UInt64 {
        var rest = Substring(text)
        let negative = rest.first == "-"
        if negative { rest = rest.dropFirst() }
        let digits = rest.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty else { throw .malformed }
        var unit = rest.dropFirst(digits.count)
        var shift: UInt64 = 0
        if let letter = unit.first {
            // ASCII first: the upper case of some letters is two characters (ß), no Character.
            guard letter.isASCII, let s = shifts[Character(letter.uppercased())] else { throw .malformed }
            shift = s
            unit = unit.dropFirst()
            // `KiB` spelled out is the same unit; a bare `B` (`10MB`) is the ambiguous SI form.
            if !unit.isEmpty && unit != "iB" { throw .malformed }
        }
        if negative {
            // -0 is still zero; anything else is below every range a size can have.
            if digits.allSatisfy({ $0 == "0" }) { return 0 }
            throw .outOfRange
        }
        guard let number = UInt64(digits) else { throw .outOfRange }
        let (value, overflow) = number.multipliedReportingOverflow(by: 1 << shift)
        guard !overflow else { throw .outOfRange }
        return value
    }
}
