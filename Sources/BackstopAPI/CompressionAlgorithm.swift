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

    /// Levels the library accepts.
    public var levels: ClosedRange<Int> {
        switch self {
        case .zstd: 1...19
        case .gzip: 1...9
        case .none: 0...0
        }
    }

    /// zstd 1 keeps a backup close to the dump alone on two cores (hack/bench.sh): level 3
    /// costs three times the CPU for under 1% smaller dumps of typical tables. gzip 6 is
    /// gzip's own default.
    public var defaultLevel: Int {
        switch self {
        case .zstd: 1
        case .gzip: 6
        case .none: 0
        }
    }

    /// Says which values there are, where the synthesized decoder would name a Swift type.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let algorithm = CompressionAlgorithm(rawValue: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "\"\(text)\" is not zstd, gzip or none"))
        }
        self = algorithm
    }
}
