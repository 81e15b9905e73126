import LayerFormat
import Synchronization

/// Which parts of a region every layer byte of which has been served through the mount, so
/// that the region's own page-cache pages there can be dropped (`ServedPagePolicy.drop`).
///
/// The unit is a 2 MiB block, aligned in the file: the page cache holds a file in folios of
/// up to 2 MiB (the PMD size, the largest the kernel builds for the page cache on x86-64),
/// and the kernel's POSIX_FADV_DONTNEED skips a folio that is not wholly inside the range it
/// is given. Dropping page by page after each READ therefore left ~85 % of a 256 MiB layer in
/// memory (measured); dropping whole blocks, once served, leaves none.
///
/// Per block: the bytes of layers in it (its target, counted once when first needed) and the
/// bytes served so far. A block is released once when the served count reaches its target.
/// A range served twice (a READ after the kernel evicted its own copy) counts twice and may
/// release a block early: that costs a re-read from disk, never a wrong byte, since the pages
/// are clean and the file does not change under a served generation.
final class ServedPageLedger: Sendable {
    static let blockShift = 21
    static let blockSize: UInt64 = 1 << 21

    struct Blocks {
        var target: [UInt64] = []
        var served: [UInt64] = []
        var released: [Bool] = []
    }

    private let blocks = Mutex(Blocks())

    /// Records `count` bytes at region offset `offset` as served; returns the blocks (by
    /// index) that became complete with them. `table` gives the targets on first use.
    func serve(offset: UInt64, count: UInt64, table: LayerTable, regionSize: Int) -> [Int] {
        guard count > 0 else { return [] }
        return blocks.withLock { b -> [Int] in
            if b.target.isEmpty { b = Self.blocks(table, regionSize: regionSize) }
            var done: [Int] = []
            var position = offset
            let end = offset + count
            while position < end {
                let index = Int(position >> Self.blockShift)
                guard index < b.target.count else { break }
                let blockEnd = UInt64(index + 1) << Self.blockShift
                let piece = min(end, blockEnd) - position
                b.served[index] += piece
                if !b.released[index] && b.served[index] >= b.target[index] {
                    b.released[index] = true
                    done.append(index)
                }
                position += piece
            }
            return done
        }
    }

    static func blocks(_ table: LayerTable, regionSize: Int) -> Blocks {
        let count = (regionSize + Int(blockSize) - 1) >> blockShift
        var b = Blocks(target: [UInt64](repeating: 0, count: count), served: [UInt64](repeating: 0, count: count),
                       released: [Bool](repeating: false, count: count))
        for record in table.records where record.size > 0 {
            var position = record.offset
            let end = record.offset + record.size
            while position < end {
                let index = Int(position >> blockShift)
                guard index < count else { break }
                let piece = min(end, UInt64(index + 1) << blockShift) - position
                b.target[index] += piece
                position += piece
            }
        }
        return b
    }
}
