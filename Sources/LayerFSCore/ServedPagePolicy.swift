import LayerFormat

extension FileSystem {
    /// After a READ replied with region bytes [offset, offset + count): apply the mount's
    /// `ServedPagePolicy` to the region's own pages (see `ServedPageLedger` for why whole
    /// 2 MiB blocks).
    func releaseServed(_ served: ServedGeneration, offset: UInt64, count: UInt64) {
        switch configuration.servedPages {
        case .keep:
            return
        case .pageout:
            served.region.release(offset: offset, count: count, policy: .pageout)
        case .drop:
            let region = served.region
            for block in served.servedPages.serve(offset: offset, count: count, table: served.table, regionSize: region.size) {
                let start = UInt64(block) << ServedPageLedger.blockShift
                let end = min(start + ServedPageLedger.blockSize, UInt64(region.size))
                region.release(offset: start, count: end - start, policy: .drop)
            }
        }
    }
}
