/// The id the kernel uses for a node in FUSE requests. Kept separate from the stable inode
/// number (`InodeNumber`): node ids describe this mount's table and may change when content
/// changes; inode numbers are the same on every mount of the same volume.
///
/// Layout (64 bits): `slot:16 | epoch:16 | layer:32`.
/// - root is 1 and the proto directory 2 (slot 0);
/// - a dimension directory is `slot | 0 | 0` (slot ≥ 1);
/// - a layer is `slot | epoch | layer_id` (layer_id ≥ 1). `epoch` is the dimension's
///   generation counter when the layer's content last changed, so a changed layer gets a new
///   node id and the kernel cannot serve old cached pages for it.
public struct NodeID: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let root = NodeID(rawValue: 1)
    public static let protoDirectory = NodeID(rawValue: 2)

    public static func dimension(slot: Int) -> NodeID { NodeID(rawValue: UInt64(slot) << 48) }

    public static func layer(slot: Int, epoch: UInt16, id: UInt32) -> NodeID {
        NodeID(rawValue: UInt64(slot) << 48 | UInt64(epoch) << 32 | UInt64(id))
    }

    public var slot: Int { Int(rawValue >> 48) }
    public var epoch: UInt16 { UInt16(truncatingIfNeeded: rawValue >> 32) }
    public var layerID: UInt32 { UInt32(truncatingIfNeeded: rawValue) }
    public var isDimension: Bool { slot > 0 && rawValue & 0xFFFF_FFFF_FFFF == 0 }
    public var isLayer: Bool { slot > 0 && layerID != 0 }

    public var description: String { "node \(rawValue)" }
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
