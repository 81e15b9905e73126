// The fuzz target. Built with `-sanitize=fuzzer -DFUZZING` (scripts/fuzz.sh) it is a libFuzzer
// target; built normally it is a self-contained mutation fuzzer over the same cases:
//   layerfs-fuzz [CASES] [SEED]
import Glibc
import LayerFormat

#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(_ argc: UnsafeMutablePointer<Int32>,
                     _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                     _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

// SwiftPM links an executable's entry point under this name; libFuzzer's driver runs from it.
@_cdecl("layerfs_fuzz_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var argc = argc
    var argv = argv
    return runFuzzerDriver(&argc, &argv) { data, size in
        FuzzCase.run(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }
}
#else
@main
struct MutationFuzzer {
    static func main() {
        let arguments = CommandLine.arguments
        let cases = arguments.count > 1 ? Int(arguments[1]) ?? 10_000 : 10_000
        var generator = SplitMix(seed: arguments.count > 2 ? UInt64(arguments[2]) ?? 1 : 1)
        let seeds = FuzzCase.seeds
        let tokens: [[UInt8]] = ["{", "}", "[", "]", ",", ":", "\"", "\\", "\\u", "\\ud800", "-", "0", "1e999", "-1", "18446744073709551616",
                                 "null", "true", "4294967295", "\"layer_id\"", "\"layers\"", "\"offset\"", "\"size\"", "sha256:", "\u{0}", "é",
                                 // The legacy layouts' markers and fields.
                                 "JSON", "DIMENSION:", "LAYER:", "|OFFSET:", "|SIZE:", "|", "\n", "{\"dimension\":3,\"layer\":1}",
                                 "\"content_offset\"", "\"total_size\"", "🎉"].map { Array($0.utf8) }
        var worst: UInt64 = 0
        for i in 0..<cases {
            var input = seeds[i % seeds.count]
            for _ in 0..<(1 + Int(generator.next() % 8)) {
                let position = input.isEmpty ? 0 : Int(generator.next() % UInt64(input.count))
                switch generator.next() % 6 {
                case 0 where !input.isEmpty: input[position] ^= UInt8(truncatingIfNeeded: 1 << (generator.next() % 8))
                case 1: input.insert(contentsOf: tokens[Int(generator.next() % UInt64(tokens.count))], at: position)
                case 2 where !input.isEmpty: input.removeSubrange(position..<min(input.count, position + Int(generator.next() % 16) + 1))
                case 3: input.removeSubrange(position...)
                case 4 where !input.isEmpty:
                    let end = min(input.count, position + Int(generator.next() % 64) + 1)
                    input.insert(contentsOf: input[position..<end], at: position)
                default: if !input.isEmpty { input[position] = UInt8(truncatingIfNeeded: generator.next()) }
                }
            }
            var start = timespec(), end = timespec()
            clock_gettime(CLOCK_MONOTONIC, &start)
            input.withUnsafeBytes { FuzzCase.run($0) }
            clock_gettime(CLOCK_MONOTONIC, &end)
            let ns = UInt64((end.tv_sec - start.tv_sec) * 1_000_000_000 + (end.tv_nsec - start.tv_nsec))
            worst = max(worst, ns)
            if ns > 2_000_000_000 { fatalError("case \(i) took \(ns / 1_000_000) ms: a hang") }
        }
        print("fuzz: \(cases) cases, no crash, no hang (slowest \(worst / 1000) µs)")
    }
}

/// A small deterministic generator, so a failing case can be replayed from its seed.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
#endif
