/// How the dump is compressed before encryption and storage.
public enum CompressionAlgorithm: String, Codable, CaseIterable, Sendable {
    case zstd
    case gzip
    case none

    /// Extension of the stored object, after `data.dump`.
    public var fileExtension: String {
        switch self {
        case .zstd: ".zst"
        case .gzip: ".gz"
        case .none: ""
        }
    }

    /// Levels the library accepts, and the default: zstd 3 keeps the pipeline within 10 %
    /// of the bare dump on two cores (hack/bench.sh); gzip 6 is gzip's own default.
    public var levels: ClosedRange<Int> {
        switch self {
        case .zstd: 1...19
        case .gzip: 1...9
        case .none: 0...0
        }
    }

    /// zstd 1 keeps a backup within about 10% of the dump alone on two cores (hack/bench.sh):
    /// level 3 costs three times the CPU for under 1% smaller dumps of typical tables.
    public var defaultLevel: Int {
        switch self {
        case .zstd: 1
        case .gzip: 6
        case .none: 0
        }
    }
}
