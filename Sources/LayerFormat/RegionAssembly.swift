import CLinux
import Crypto
import Glibc

/// Writes a new region.mmap out of the layers of the current one and new content, laid out
/// by the writers' rules, hashing as it goes.
///
/// Bytes of kept layers are copied by the kernel (`copy_file_range`: shared extents where the
/// filesystem can reflink, an in-kernel copy elsewhere), falling back to pread/pwrite where
/// the kernel refuses (EXDEV, EINVAL, ENOSYS, EOPNOTSUPP). Their layer checksums are the
/// index's and are not computed again. The region checksum covers every byte after the
/// header, so kept bytes are still read once (through the current region's descriptor,
/// normally from the page cache) and hashed: that pass is what an update of a large
/// dimension costs.
///
/// Consecutive kept layers whose distance is the same in both regions form a run, copied in
/// one call. The bytes between them must be zeros in the new region (writers pad with
/// zeros); the current region's are checked while hashing, and where a producer left other
/// bytes there, the layers of that run are copied one by one, leaving the gaps as the
/// zeros the new file starts with.
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
    /// Cleared for good by the first refusal, or from the start to test the fallback.
    var kernelCopy: Bool
    var statistics = DimensionUpdate.CopyStatistics()

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

        var clean = true
        var gapIndex = 0
        var position = oldStart
        let end = oldStart + span
        while position < end {
            let want = Int(min(UInt64(buffer.count), end - position))
            let n = SystemCalls.retrying { pread(current.fd, buffer.baseAddress, want, off_t(position)) }
            if n < 0 { throw SystemCalls.fail(current.file, "read") }
            if n == 0 {
                throw FormatError(.unusableFile, file: current.file,
                                  "the file ends at byte \(position), short of the \(current.size) bytes it had when opened: truncated in place while being read (writers must replace a region, never modify it)")
            }
            let chunkEnd = position + UInt64(n)
            // Gap bytes become zeros: checked, then zeroed in the buffer before hashing.
            while gapIndex < gaps.count, gaps[gapIndex].start < chunkEnd {
                let from = max(gaps[gapIndex].start, position), to = min(gaps[gapIndex].end, chunkEnd)
                let slice = UnsafeMutableRawBufferPointer(rebasing: buffer[Int(from - position)..<Int(to - position)])
                if clean && slice.contains(where: { $0 != 0 }) { clean = false }
                slice.initializeMemory(as: UInt8.self, repeating: 0)
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
        guard kernelCopy else { return }
        if clean {
            try copy(from: oldStart, to: run[0].new, count: span)
        } else {
            for layer in run { try copy(from: layer.old.offset, to: layer.new, count: layer.old.size) }
        }
    }

    /// copy_file_range, and pread/pwrite for whatever the kernel refuses to copy.
    private mutating func copy(from source: UInt64, to destination: UInt64, count: UInt64) throws(FormatError) {
        guard let current, count > 0 else { return }
        var input = Int64(source), output = Int64(destination)
        var left = count
        while left > 0 && kernelCopy {
            // At most 1 GiB a call: the kernel caps a call near 2 GiB anyway.
            let n = layerfs_copy_file_range(current.fd, &input, self.output, &output, Int(min(left, 1 << 30)))
            if n > 0 {
                left -= UInt64(n)
                statistics.copiedInKernel += UInt64(n)
                statistics.kernelCopies += 1
                continue
            }
            if n == 0 {
                throw FormatError(.unusableFile, file: current.file,
                                  "the file ends at byte \(input), short of the \(current.size) bytes it had when opened: truncated in place while being read (writers must replace a region, never modify it)")
            }
            let code = errno
            if code == EINTR { continue }
            // Across filesystems (before Linux 5.3, or where the filesystem will not), or not
            // offered at all: the fallback, for this and every later copy of the update.
            guard code == EXDEV || code == EINVAL || code == ENOSYS || code == EOPNOTSUPP else {
                throw SystemCalls.fail(display, "copy_file_range", code)
            }
            kernelCopy = false
        }
        var position = UInt64(input), target = UInt64(output)
        while left > 0 {
            let want = Int(min(UInt64(buffer.count), left))
            let n = SystemCalls.retrying { pread(current.fd, buffer.baseAddress, want, off_t(position)) }
            if n < 0 { throw SystemCalls.fail(current.file, "read") }
            if n == 0 { throw FormatError(.unusableFile, file: current.file, "the file ends at byte \(position), short of the \(current.size) bytes it had when opened") }
            try SystemCalls.writeAll(self.output, UnsafeRawBufferPointer(rebasing: buffer[0..<n]), at: target, display: display)
            statistics.copiedByReadWrite += UInt64(n)
            position += UInt64(n)
            target += UInt64(n)
            left -= UInt64(n)
        }
    }
}
