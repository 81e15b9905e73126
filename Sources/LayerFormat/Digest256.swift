import Crypto

/// A SHA-256 digest held as four words rather than a String: 32 bytes instead of ~80 plus an
/// allocation, which matters when a mount holds millions of layers.
public struct Digest256: Hashable, Sendable {
    public var w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

    public static let zero = Digest256(w0: 0, w1: 0, w2: 0, w3: 0)

    public init(w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64) {
        self.w0 = w0; self.w1 = w1; self.w2 = w2; self.w3 = w3
    }

    /// From 32 raw bytes (big-endian words, so that hex order is byte order).
    public init<C: Collection>(bytes: C) where C.Element == UInt8 {
        precondition(bytes.count == 32)
        var words: [UInt64] = [0, 0, 0, 0]
        for (i, b) in bytes.enumerated() { words[i / 8] = words[i / 8] << 8 | UInt64(b) }
        self.init(w0: words[0], w1: words[1], w2: words[2], w3: words[3])
    }

    /// SHA-256 of a byte buffer, without copying it. Uses swift-crypto, whose bundled
    /// BoringSSL takes the SHA-NI path where the CPU has it.
    public init(_ digest: SHA256.Digest) {
        self.init(bytes: Array(digest))
    }

    public static func sha256(_ buffer: UnsafeRawBufferPointer) -> Digest256 {
        Digest256(SHA256.hash(data: buffer))
    }

    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(32)
        for w in [w0, w1, w2, w3] {
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: w >> UInt64(shift))) }
        }
        return out
    }

    /// 64 lowercase hex digits.
    public var hex: String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The index's spelling: `sha256:` + 64 lowercase hex digits.
    public var checksumString: String { "sha256:" + hex }

    /// Parses `sha256:<64 lowercase hex>`; nil for anything else (uppercase included: the
    /// spec fixes one spelling so that checksums compare as strings too).
    public init?(checksumString s: String) {
        var utf8 = Array(s.utf8)
        let prefix = Array("sha256:".utf8)
        guard utf8.count == prefix.count + 64, utf8.starts(with: prefix) else { return nil }
        utf8.removeFirst(prefix.count)
        var raw = [UInt8]()
        raw.reserveCapacity(32)
        var i = 0
        while i < 64 {
            guard let hi = Digest256.nibble(utf8[i]), let lo = Digest256.nibble(utf8[i + 1]) else { return nil }
            raw.append(hi << 4 | lo)
            i += 2
        }
        self.init(bytes: raw)
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        default: return nil
        }
    }
}
