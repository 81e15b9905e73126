import Crypto
import Glibc

/// Writes a new region.mmap out of the layers of the current one and new content, laid out
/// by the writers' rules, hashing as it goes.
///
/// Bytes of kept layers are copied by the kernel (`RegionCopier`: copy_file_range, with a
/// pread/pwrite fallback) on a second thread. Their layer checksums are the index's and are
/// not computed again. The region checksum covers every byte after the header, so kept
/// bytes are still read once here (through the current region's descriptor, normally from
/// the page cache) and hashed while the copy runs: that pass is what an update of a large
/// dimension costs.
///
/// Consecutive kept layers whose distance is the same in both regions form a run, copied in
/// one call. The bytes between them must be zeros in the new region (writers pad with
/// zeros): they are hashed as zeros, and where the current region holds other bytes there
/// (another producer's padding), the copied gaps are zeroed again after the copy.
///
/// Without the kernel copy (`kernelCopy` false: tests of the fallback), one read serves the
/// hash and the write, on this thread.
struct RegionAssembly {
    enum Piece {
        /// A kept layer: its entry in the current generation.
        case kept(LayerEntry)
        /// New bytes.
        case content(LayerContent)
    }

    let output: Int32
    let display: String
    let current: MappedRegion?
    /// Copies on the copier's thread; false copies with pread/pwrite here.
    let kernelCopy: Bool
    var statistics = DimensionUpdate.CopyStatistics()
    private let copier: RegionCopier?

    private var regionHasher = SHA256()
    /// Bytes [256, hashed) of the new region are in `regionHasher`.
    private var hashed = UInt64(RegionHeader.size)
    private let buffer: UnsafeMutableRawBufferPointer
    private let zeros: UnsafeMutableRawBufferPointer

    init(output: Int32, display: String, current: MappedRegion?, kernelCopy: Bool) {
        self.output = output
        self.display = display
        self.current = current
        self.kernelCopy = kernelCopy
        copier = kernelCopy ? current.map { RegionCopier(source: $0, output: output, display: display) } : nil
        // 1 MiB: large enough that the system calls cost nothing next to the hashing.
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 4096)
        zeros.initializeMemory(as: UInt8.self, repeating: 0)
    }

    func deallocate() {
        buffer.deallocate()
        zeros.deallocate()
    }

    /// Writes `pieces` (ascending offsets, as `Packer.layout` gives them) into the output,
    /// which is `totalSize` bytes of zeros already (ftruncate). Returns the region checksum
    /// and, per piece, the checksum of new content (nil for kept layers).
    mutating func write(_ pieces: [(offset: UInt64, piece: Piece)], totalSize: UInt64) throws(FormatError) -> (region: Digest256, content: [Digest256?]) {
        let result: (region: Digest256, content: [Digest256?])
        do {
            result = try hashAndWrite(pieces, totalSize: totalSize)
        } catch {
            // The copier's jobs write into the file the caller is about to remove.
            _ = try? copier?.finish()
            throw error
        }
        if let copied = try copier?.finish() {
            statistics.copiedInKernel = copied.copiedInKernel
            statistics.copiedByReadWrite += copied.copiedByReadWrite
            statistics.kernelCopies = copied.kernelCopies
        }
        return result
    }

    private mutating func hashAndWrite(_ pieces: [(offset: UInt64, piece: Piece)], totalSize: UInt64) throws(FormatError) -> (region: Digest256, content: [Digest256?]) {
        var sums = [Digest256?](repeating: nil, count: pieces.count)
        current?.adviseSequentialReads()
        var i = 0
        while i < pieces.count {
            switch pieces[i].piece {
            case .content(let content):
                try hashZeros(upTo: pieces[i].offset)
                sums[i] = try writeContent(content, at: pieces[i].offset)
                i += 1
            case .kept:
                // The run: kept layers at the same distance in both regions.
                var run: [(new: UInt64, old: LayerEntry)] = []
                while i < pieces.count, case .kept(let entry) = pieces[i].piece {
                    if let last = run.last {
                        // Both distances are ≥ 0 once the old layer follows the previous one,
                        // so wrapping subtraction compares them exactly.
                        guard entry.offset >= last.old.offset + last.old.size,
                              pieces[i].offset &- last.new == entry.offset &- last.old.offset else { break }
                    }
                    run.append((pieces[i].offset, entry))
                    i += 1
                }
                let next = i < pieces.count ? pieces[i].offset : totalSize
                try hashZeros(upTo: run[0].new)
                try copyRun(run, newEnd: next)
            }
        }
        try hashZeros(upTo: totalSize)
        return (Digest256(regionHasher.finalize()), sums)
    }

    private mutating func hashZeros(upTo end: UInt64) throws(FormatError) {
        while hashed < end {
            let n = Int(min(UInt64(zeros.count), end - hashed))
            regionHasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: zeros[0..<n]))
            hashed += UInt64(n)
        }
    }

    /// New bytes: hashed for the layer and the region, written at `offset`.
    private mutating func writeContent(_ content: LayerContent, at offset: UInt64) throws(FormatError) -> Digest256 {
        var layerHasher = SHA256()
        var done: UInt64 = 0
        let output = self.output, display = self.display
        var region = regionHasher
        try content.read(through: buffer) { (bytes: UnsafeRawBufferPointer) throws(FormatError) in
            layerHasher.update(bufferPointer: bytes)
            region.update(bufferPointer: bytes)
            try SystemCalls.writeAll(output, bytes, at: offset + done, display: display)
            done += UInt64(bytes.count)
        }
        regionHasher = region
        hashed += done
        statistics.newBytes += done
        return Digest256(layerHasher.finalize())
    }

    /// One run of kept layers, new bytes [run[0].new, newEnd) with everything past the last
    /// layer zeros. Reads the current region's bytes of the same span once to hash them (gap
    /// bytes hashed as the zeros they become), then copies.
    private mutating func copyRun(_ run: [(new: UInt64, old: LayerEntry)], newEnd: UInt64) throws(FormatError) {
        guard let current else { throw FormatError(.system, file: display, "kept layers without a current region") }
        let oldStart = run[0].old.offset
        let last = run[run.count - 1]
        let lastEnd = last.old.offset + last.old.size
        // The span ends where the new region's next piece begins, or earlier where the
        // current file ends; what lies beyond stays the zeros it is.
        let span = min(newEnd - run[0].new, UInt64(current.size) - oldStart)
        // The bytes between layers (and after the last) in the current region's coordinates.
        var gaps: [(start: UInt64, end: UInt64)] = []
        for (a, b) in zip(run, run.dropFirst()) where a.old.offset + a.old.size < b.old.offset {
            gaps.append((a.old.offset + a.old.size, b.old.offset))
        }
        if lastEnd < oldStart + span { gaps.append((lastEnd, oldStart + span)) }

        // Started before the hashing, so that both run at once.
        copier?.copy(from: oldStart, to: run[0].new, count: span)
        var clean = true
        var gapIndex = 0
        var position = oldStart
        let end = oldStart + span
        while position < end {
            let want = Int(min(UInt64(buffer.count), end - position))
            let n = SystemCalls.retrying { pread(current.fd, buffer.baseAddress, want, off_t(position)) }
            if n < 0 { throw SystemCalls.fail(current.file, "read") }
            if n == 0 { throw RegionCopier.truncated(current, at: position) }
            let chunkEnd = position + UInt64(n)
            // Gap bytes become zeros: checked, then zeroed in the buffer before hashing.
            while gapIndex < gaps.count, gaps[gapIndex].start < chunkEnd {
                let from = max(gaps[gapIndex].start, position), to = min(gaps[gapIndex].end, chunkEnd)
                let slice = UnsafeMutableRawBufferPointer(rebasing: buffer[Int(from - position)..<Int(to - position)])
                if !RegionAssembly.allZero(UnsafeRawBufferPointer(slice)) {
                    clean = false
                    slice.initializeMemory(as: UInt8.self, repeating: 0)
                }
                if gaps[gapIndex].end > chunkEnd { break }
                gapIndex += 1
            }
            let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
            regionHasher.update(bufferPointer: bytes)
            if !kernelCopy {
                // The fallback writes what it hashed: one read serves both.
                try SystemCalls.writeAll(output, bytes, at: run[0].new + (position - oldStart), display: display)
                statistics.copiedByReadWrite += UInt64(n)
            }
            position = chunkEnd
        }
        statistics.hashedKeptBytes += span
        hashed += span
        if !clean, let copier {
            for gap in gaps { copier.zero(at: run[0].new + (gap.start - oldStart), count: gap.end - gap.start) }
        }
    }

    /// Word by word: the gaps of a region of many small layers add up to most of its bytes.
    static func allZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        while i + 8 <= bytes.count {
            if bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self) != 0 { return false }
            i += 8
        }
        while i < bytes.count {
            if bytes[i] != 0 { return false }
            i += 1
        }
        return true
    }
}
