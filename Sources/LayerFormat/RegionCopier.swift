import CLinux
import Dispatch
import Glibc

/// Copies byte ranges of the current region into the new one on a thread of its own, in the
/// order they were asked for, so that the kernel copies kept layers while `RegionAssembly`
/// hashes them: on two cores the copy then costs no wall time beside the hashing.
///
/// `copy_file_range` first (shared extents where the filesystem can reflink, an in-kernel
/// copy elsewhere); where the kernel refuses (EXDEV, EINVAL, ENOSYS, EOPNOTSUPP), pread and
/// pwrite, for that copy and every later one. The first failure stops the jobs after it and
/// is reported by `finish`.
final class RegionCopier: @unchecked Sendable {
    // @unchecked: the mutable state is touched only by the jobs, which run one at a time on
    // `queue`, and by `finish`, after it has waited for them all.
    private let queue = DispatchQueue(label: "layerfs.region-copier")
    private let group = DispatchGroup()
    private let source: MappedRegion
    private let output: Int32
    private let display: String
    private var kernelCopy = true
    private var statistics = DimensionUpdate.CopyStatistics()
    private var failure: FormatError?
    private var buffer: UnsafeMutableRawBufferPointer?

    init(source: MappedRegion, output: Int32, display: String) {
        self.source = source
        self.output = output
        self.display = display
    }

    deinit { buffer?.deallocate() }

    /// Bytes [from, from + count) of the current region to `to` in the new one.
    func copy(from: UInt64, to: UInt64, count: UInt64) {
        guard count > 0 else { return }
        queue.async(group: group) { [self] in
            guard failure == nil else { return }
            do throws(FormatError) { try run(from: from, to: to, count: count) } catch { failure = error }
        }
    }

    /// Zeros over [at, at + count) of the new region, after the copies asked for before:
    /// for gaps a whole-span copy brought along that held other bytes than zeros.
    func zero(at: UInt64, count: UInt64) {
        guard count > 0 else { return }
        queue.async(group: group) { [self] in
            guard failure == nil else { return }
            let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(min(count, 1 << 16)), alignment: 4096)
            zeros.initializeMemory(as: UInt8.self, repeating: 0)
            defer { zeros.deallocate() }
            var done: UInt64 = 0
            while done < count {
                let n = Int(min(UInt64(zeros.count), count - done))
                do throws(FormatError) {
                    try SystemCalls.writeAll(output, UnsafeRawBufferPointer(rebasing: zeros[0..<n]), at: at + done, display: display)
                } catch {
                    failure = error
                    return
                }
                done += UInt64(n)
            }
        }
    }

    /// Waits for every job; the copy statistics, or the first failure.
    func finish() throws(FormatError) -> DimensionUpdate.CopyStatistics {
        group.wait()
        if let failure { throw failure }
        return statistics
    }

    private func run(from: UInt64, to: UInt64, count: UInt64) throws(FormatError) {
        var input = Int64(from), outputOffset = Int64(to)
        var left = count
        while left > 0 && kernelCopy {
            // At most 1 GiB a call: the kernel caps a call near 2 GiB anyway.
            let n = layerfs_copy_file_range(source.fd, &input, output, &outputOffset, Int(min(left, 1 << 30)))
            if n > 0 {
                left -= UInt64(n)
                statistics.copiedInKernel += UInt64(n)
                statistics.kernelCopies += 1
                continue
            }
            if n == 0 { throw RegionCopier.truncated(source, at: UInt64(input)) }
            let code = errno
            if code == EINTR { continue }
            // Across filesystems (before Linux 5.3, or where the filesystem will not), or not
            // offered at all: the fallback, for this and every later copy of the update.
            guard code == EXDEV || code == EINVAL || code == ENOSYS || code == EOPNOTSUPP else {
                throw SystemCalls.fail(display, "copy_file_range", code)
            }
            kernelCopy = false
        }
        guard left > 0 else { return }
        let buffer = self.buffer ?? UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        self.buffer = buffer
        var position = UInt64(input), target = UInt64(outputOffset)
        while left > 0 {
            let want = Int(min(UInt64(buffer.count), left))
            let n = SystemCalls.retrying { pread(source.fd, buffer.baseAddress, want, off_t(position)) }
            if n < 0 { throw SystemCalls.fail(source.file, "read") }
            if n == 0 { throw RegionCopier.truncated(source, at: position) }
            try SystemCalls.writeAll(output, UnsafeRawBufferPointer(rebasing: buffer[0..<n]), at: target, display: display)
            statistics.copiedByReadWrite += UInt64(n)
            position += UInt64(n)
            target += UInt64(n)
            left -= UInt64(n)
        }
    }

    /// The current region ended early: some writer truncated it in place.
    static func truncated(_ region: MappedRegion, at offset: UInt64) -> FormatError {
        FormatError(.unusableFile, file: region.file,
                    "the file ends at byte \(offset), short of the \(region.size) bytes it had when opened: truncated in place while being read (writers must replace a region, never modify it)")
    }
}
