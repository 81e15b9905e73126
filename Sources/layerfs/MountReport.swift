import Glibc
import LayerFormat
import LayerFSCore
import LayerFUSE

/// What a running mount says about itself: the document `layerfs status` receives over the
/// control socket, and the Prometheus text of `--metrics-file`. Both are read from the same
/// figures: the binding's counters (atomics, read cell by cell) and the core's per-dimension
/// status (each slot under its own lock, one at a time), so they never stop a request.
struct MountReport: Sendable {
    let source: String
    let mountpoint: String
    let options: [String]
    let accessLog: String?
    let metricsFile: String?
    let metricsInterval: Int
    let fs: FileSystem
    let observer: MountObserver
    /// Wall-clock start, seconds since the epoch with a fraction.
    let startedAt: Double

    static func wallClock() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    static func seconds(_ value: Double) -> JSONOutput { .number(String(format: "%.6f", value)) }

    /// The label a slot's counters carry: `D01`, `proto/NAME`, or `/` for the root and proto/.
    static func label(_ status: DimensionStatus?) -> String {
        guard let status else { return "/" }
        return status.path.hasPrefix("proto/") ? status.path : status.name
    }

    // MARK: - Status document

    func status() -> JSONOutput {
        let dimensions = fs.dimensionStatuses()
        let counters = observer.counters.snapshot()
        var totals = CounterSnapshot()
        for (_, c) in counters { totals.add(c) }
        let log = observer.accessLog
        var fields: [(String, JSONOutput)] = [
            ("mountpoint", .string(mountpoint)), ("source", .string(source)),
            ("options", .string(options.joined(separator: ","))),
            ("pid", .integer(UInt64(getpid()))), ("version", .string(LayerFS.version)),
            ("started_at", .string(Timestamp(seconds: Int64(startedAt)).rfc3339)),
            ("uptime_seconds", MountReport.seconds(MountReport.wallClock() - startedAt)),
            ("access_log", .optional(accessLog)),
            ("access_log_lines", log.map { .integer($0.written.load(ordering: .relaxed)) } ?? .null),
            ("access_log_lost", log.map { .integer($0.lostTotal.load(ordering: .relaxed)) } ?? .null),
            ("metrics_file", .optional(metricsFile)),
            ("metrics_interval_seconds", metricsFile == nil ? .null : .integer(UInt64(metricsInterval))),
        ]
        fields.append(("totals", .object(MountReport.counterFields(totals) + [
            ("generations_loaded", .integer(dimensions.reduce(0) { $0 + $1.history.loaded })),
            ("generations_rejected", .integer(dimensions.reduce(0) { $0 + $1.history.rejected })),
            ("generations_retired_held", .integer(UInt64(dimensions.reduce(0) { $0 + $1.retiredHeld }))),
            ("lookups_outstanding", .integer(dimensions.reduce(0) { $0 + $1.lookupsOutstanding })),
        ])))
        fields.append(("dimensions", .array(dimensions.map { d in
            .object([
                ("dimension", .string(MountReport.label(d))), ("path", .string(d.path)), ("status", .string(d.phase)),
                ("generation", .optional(d.generation)), ("layers", .integer(UInt64(d.layers))), ("bytes", .integer(d.bytes)),
                ("updated_at", .optional(d.updatedAt?.rfc3339)), ("last_change", .optional(d.history.lastChange?.rfc3339)),
                ("last_load_seconds", d.history.loaded + d.history.rejected == 0 ? .null
                    : MountReport.seconds(Double(d.history.lastLoadNanoseconds) / 1e9)),
                ("generations_loaded", .integer(d.history.loaded)), ("generations_rejected", .integer(d.history.rejected)),
                ("generations_retired_held", .integer(UInt64(d.retiredHeld))), ("lookups_outstanding", .integer(d.lookupsOutstanding)),
                ("error", .optional(d.error)),
            ] + MountReport.counterFields(counters[d.slot] ?? CounterSnapshot()))
        })))
        return .object(fields)
    }

    static func counterFields(_ c: CounterSnapshot) -> [(String, JSONOutput)] {
        let requests: [(String, JSONOutput)] = Operation.allCases.compactMap { op in
            c.requests[op.rawValue] > 0 ? (op.name, .integer(c.requests[op.rawValue])) : nil
        }
        let errors: [(String, JSONOutput)] = c.errors.sorted { $0.key < $1.key }.map { (ErrnoName.name($0.key), .integer($0.value)) }
        func quantile(_ q: Double) -> JSONOutput { c.latencyQuantile(q).map(MountReport.seconds) ?? .null }
        return [
            ("requests", .object(requests)), ("errors", .object(errors)),
            ("reads", .integer(c.reads)), ("read_bytes", .integer(c.bytesRead)), ("prefetch_bytes", .integer(c.bytesPushed)),
            ("read_latency", .object([("p50_seconds", quantile(0.5)), ("p99_seconds", quantile(0.99)),
                                      ("max_seconds", c.reads == 0 ? .null : MountReport.seconds(Double(c.latencyMaxNanoseconds) / 1e9))])),
        ]
    }

    // MARK: - Prometheus text exposition (version 0.0.4)

    static func escapeLabel(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }

    static func number(_ v: Double) -> String {
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return String(v)
    }

    func prometheus() -> String {
        let dimensions = fs.dimensionStatuses()
        let bySlot = Dictionary(dimensions.map { ($0.slot, $0) }, uniquingKeysWith: { a, _ in a })
        let counters = observer.counters.snapshot().sorted { $0.key < $1.key }
        let mount = "mountpoint=\"\(MountReport.escapeLabel(mountpoint))\""
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ samples: [(String, String)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (labels, value) in samples { out += "\(name){\(mount)\(labels.isEmpty ? "" : "," + labels)} \(value)\n" }
        }
        func dim(_ slot: Int) -> String { "dimension=\"\(MountReport.escapeLabel(MountReport.label(bySlot[slot])))\"" }

        family("layerfs_info", "gauge", "The daemon serving the mount: always 1, with its version and source.",
               [("version=\"\(LayerFS.version)\",source=\"\(MountReport.escapeLabel(source))\",pid=\"\(getpid())\"", "1")])
        family("layerfs_start_time_seconds", "gauge", "When the daemon started serving, seconds since the epoch.",
               [("", String(format: "%.3f", startedAt))])
        var requests: [(String, String)] = [], errors: [(String, String)] = [], bytes: [(String, String)] = []
        var maxLatency: [(String, String)] = [], pushed: [(String, String)] = []
        for (slot, c) in counters {
            for op in Operation.allCases where c.requests[op.rawValue] > 0 {
                requests.append(("\(dim(slot)),operation=\"\(op.name)\"", String(c.requests[op.rawValue])))
            }
            for (e, n) in c.errors.sorted(by: { $0.key < $1.key }) { errors.append(("\(dim(slot)),errno=\"\(ErrnoName.name(e))\"", String(n))) }
            if c.bytesPushed > 0 { pushed.append((dim(slot), String(c.bytesPushed))) }
            guard c.reads > 0 else { continue }
            bytes.append((dim(slot), String(c.bytesRead)))
            maxLatency.append((dim(slot), MountReport.number(Double(c.latencyMaxNanoseconds) / 1e9)))
        }
        family("layerfs_requests_total", "counter", "FUSE requests received, by dimension (\"/\": the root and proto/ directories) and operation.", requests)
        family("layerfs_errors_total", "counter", "Requests answered with an error, by dimension and errno.", errors)
        family("layerfs_read_bytes_total", "counter", "Bytes served by READ, by dimension.", bytes)
        family("layerfs_prefetch_bytes_total", "counter", "Bytes pushed into the kernel's page cache ahead of readers (FUSE_NOTIFY_STORE), by dimension.", pushed)
        out += "# HELP layerfs_read_latency_seconds Time from a READ's arrival in the daemon to its reply, by dimension.\n"
        out += "# TYPE layerfs_read_latency_seconds histogram\n"
        for (slot, c) in counters where c.reads > 0 {
            var cumulative: UInt64 = 0
            for (i, n) in c.latencyBuckets.enumerated() {
                cumulative += n
                let le = i < MountCounters.latencyBounds.count ? MountReport.number(MountCounters.latencyBounds[i]) : "+Inf"
                out += "layerfs_read_latency_seconds_bucket{\(mount),\(dim(slot)),le=\"\(le)\"} \(cumulative)\n"
            }
            out += "layerfs_read_latency_seconds_sum{\(mount),\(dim(slot))} \(MountReport.number(Double(c.latencySumNanoseconds) / 1e9))\n"
            out += "layerfs_read_latency_seconds_count{\(mount),\(dim(slot))} \(cumulative)\n"
        }
        family("layerfs_read_latency_max_seconds", "gauge", "The slowest READ since the mount, by dimension.", maxLatency)
        let shown = dimensions.filter { $0.phase != "removed" || $0.history.loaded > 0 }
        func perDimension(_ value: (DimensionStatus) -> String) -> [(String, String)] { shown.map { (dim($0.slot), value($0)) } }
        family("layerfs_generations_loaded_total", "counter", "Generations taken (first load and each update served).",
               perDimension { String($0.history.loaded) })
        family("layerfs_generations_rejected_total", "counter", "Generations refused (invalid files; the previous one stays served).",
               perDimension { String($0.history.rejected) })
        family("layerfs_generations_retired_held", "gauge", "Generations no longer served that the kernel still holds node ids in.",
               perDimension { String($0.retiredHeld) })
        family("layerfs_lookups_outstanding", "gauge", "Lookups the kernel holds on layers (released by FORGET).",
               perDimension { String($0.lookupsOutstanding) })
        family("layerfs_dimension_layers", "gauge", "Layers of the served generation.", perDimension { String($0.layers) })
        family("layerfs_dimension_bytes", "gauge", "Bytes of the served generation's layers.", perDimension { String($0.bytes) })
        family("layerfs_dimension_failed", "gauge", "1 when the dimension, or its newest files, cannot be served.",
               perDimension { $0.error == nil ? "0" : "1" })
        family("layerfs_dimension_load_seconds", "gauge", "How long the last load of the dimension took.",
               perDimension { MountReport.number(Double($0.history.lastLoadNanoseconds) / 1e9) })
        family("layerfs_dimension_last_change_timestamp_seconds", "gauge", "When the dimension last took or refused a generation (0: never).",
               perDimension { String($0.history.lastChange?.seconds ?? 0) })
        if let log = observer.accessLog {
            family("layerfs_access_log_lines_total", "counter", "Lines written to the access log.",
                   [("", String(log.written.load(ordering: .relaxed)))])
            family("layerfs_access_log_lost_total", "counter", "Access log lines dropped because the writer fell behind.",
                   [("", String(log.lostTotal.load(ordering: .relaxed)))])
        }
        return out
    }
}
