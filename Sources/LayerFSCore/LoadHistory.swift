import Glibc
import LayerFormat

/// Running figures of one dimension's loads, kept in its slot's locked state beside the
/// generations themselves, for `layerfs status` and the metrics file. Changed only where a
/// load happens (under the slot's lock), read through `FileSystem.dimensionStatuses`.
public struct LoadHistory: Sendable {
    /// Generations taken (first load and every update served).
    public var loaded: UInt64 = 0
    /// Generations refused (a first load that failed, or an update not taken).
    public var rejected: UInt64 = 0
    /// How long the last load took, valid or not, in nanoseconds.
    public var lastLoadNanoseconds: UInt64 = 0
    /// When the last generation was taken or refused (wall clock).
    public var lastChange: Timestamp?

    static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}

/// One generation served or refused, as the binding's access log records it. Reported from
/// inside the load (under the slot's lock): the receiver only queues it.
public struct GenerationEvent: Sendable {
    public enum Outcome: Sendable {
        case served(generation: String, layers: Int)
        case rejected(error: String)
    }

    public var dimension: String
    public var outcome: Outcome
}

extension LoadHistory {
    mutating func record(_ outcome: DimensionSlot.LoadOutcome, served: ServedGeneration?, since started: UInt64) {
        switch outcome {
        case .taken:
            // An empty dimension is not a generation.
            if served != nil { loaded += 1 }
        case .rejected: rejected += 1
        case .deferred, .vanished: return
        }
        lastLoadNanoseconds = LoadHistory.monotonicNanoseconds() &- started
        lastChange = .now()
    }

    func report(_ outcome: DimensionSlot.LoadOutcome, served: ServedGeneration?, dimension: String,
                to events: @Sendable (GenerationEvent) -> Void) {
        switch outcome {
        case .taken:
            guard let served else { return }
            events(GenerationEvent(dimension: dimension, outcome: .served(generation: served.regionChecksum.checksumString,
                                                                         layers: served.table.records.count)))
        case .rejected(let error):
            events(GenerationEvent(dimension: dimension, outcome: .rejected(error: error.description)))
        case .deferred, .vanished: return
        }
    }
}
