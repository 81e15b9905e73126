/// The id the kernel uses for a node in FUSE requests. Kept separate from the stable inode
/// number (`InodeNumber`): node ids describe this mount's table and change when content
/// changes; inode numbers are the same on every mount of the same volume.
///
/// Layout (64 bits): `slot:16 | tag:16 | layer:32`.
/// - root is 1 and the proto directory 2 (slot 0);
/// - a dimension directory is `slot | incarnation tag | 0` (slot ≥ 1): a dimension that goes
///   away and comes back is a new directory to the kernel, with nothing cached inside it;
/// - a layer is `slot | version tag | layer_id` (layer_id ≥ 1), where the version is the
///   64-bit counter value the layer's current content was given (`NodeVersion`).
///
/// The tag holds the low bits of a 64-bit counter; the bits above it travel in the entry's
/// `generation` (`fuse_entry_param.generation`), so the pair (node id, generation) never names
/// two contents within a mount's life. The node id alone is reused only once the kernel has
/// forgotten every earlier use (the slot's state checks that before handing a tag out).
public struct NodeID: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let root = NodeID(rawValue: 1)
    public static let protoDirectory = NodeID(rawValue: 2)

    public static func dimension(slot: Int, tag: UInt16) -> NodeID {
        NodeID(rawValue: UInt64(slot) << 48 | UInt64(tag) << 32)
    }

    public static func layer(slot: Int, tag: UInt16, id: UInt32) -> NodeID {
        NodeID(rawValue: UInt64(slot) << 48 | UInt64(tag) << 32 | UInt64(id))
    }

    public var slot: Int { Int(rawValue >> 48) }
    public var tag: UInt16 { UInt16(truncatingIfNeeded: rawValue >> 32) }
    public var layerID: UInt32 { UInt32(truncatingIfNeeded: rawValue) }
    public var isDimension: Bool { slot > 0 && layerID == 0 }
    public var isLayer: Bool { slot > 0 && layerID != 0 }

    public var description: String { "node \(rawValue)" }
}

/// How a 64-bit counter (a layer's version, a dimension's incarnation) splits between the node
/// id's 16-bit tag and the entry's generation. Tests narrow the tag to reach its wrap quickly.
public struct NodeTagging: Sendable, Equatable {
    public let bits: Int

    public init(bits: Int = 16) {
        precondition((1...16).contains(bits), "tag bits are 1 to 16")
        self.bits = bits
    }

    public var mask: UInt64 { (1 << UInt64(bits)) - 1 }
    public var tagCount: UInt64 { 1 << UInt64(bits) }
    public func tag(_ counter: UInt64) -> UInt16 { UInt16(truncatingIfNeeded: counter & mask) }
    /// The kernel keeps a 32-bit generation per inode: 2^48 versions per dimension fit.
    public func generation(_ counter: UInt64) -> UInt64 { (counter >> UInt64(bits)) & 0xFFFF_FFFF }
}

/// `st_ino`: derived only from (dimension, layer), so the same on every mount of the volume.
/// Root 1, proto directory 2, a dimension `key << 32`, a layer `key << 32 | layer_id`, where
/// key is the consciousness id, or for a proto NAME a 31-bit FNV-1a hash of the name with the
/// top bit set (so it cannot meet a consciousness id below 2^31).
public struct InodeNumber: Hashable, Sendable {
    public var rawValue: UInt64

    public static let root = InodeNumber(rawValue: 1)
    public static let protoDirectory = InodeNumber(rawValue: 2)

    public static func dimensionKey(consciousness id: UInt32) -> UInt64 { UInt64(id) }

    public static func dimensionKey(proto name: String) -> UInt64 {
        var hash: UInt32 = 2_166_136_261
        for b in name.utf8 { hash = (hash ^ UInt32(b)) &* 16_777_619 }
        return UInt64(0x8000_0000 | (hash & 0x7FFF_FFFF))
    }

    public static func dimension(key: UInt64) -> InodeNumber { InodeNumber(rawValue: key << 32) }
    public static func layer(key: UInt64, id: UInt32) -> InodeNumber { InodeNumber(rawValue: key << 32 | UInt64(id)) }
}
