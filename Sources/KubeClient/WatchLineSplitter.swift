/// Splits a watch stream into its lines (one JSON event each), however the bytes arrive:
/// a line may be split anywhere, many lines may come at once, and lines may be very long.
public struct WatchLineSplitter: Sendable {
    private var pending: [UInt8] = []
    /// A line longer than this is an error, not an unbounded buffer.
    public let maximumLineLength: Int

    public init(maximumLineLength: Int = 64 << 20) {
        self.maximumLineLength = maximumLineLength
    }

    /// Adds bytes and returns the lines they complete (without the newline; empty lines skipped).
    public mutating func push(_ bytes: UnsafeRawBufferPointer) throws(KubeAPIError) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        var start = 0
        for index in 0..<bytes.count where bytes[index] == UInt8(ascii: "\n") {
            if pending.isEmpty {
                if index > start { lines.append(Array(bytes[start..<index])) }
            } else {
                pending.append(contentsOf: bytes[start..<index])
                lines.append(pending)
                pending.removeAll(keepingCapacity: true)
            }
            start = index + 1
        }
        pending.append(contentsOf: bytes[start..<bytes.count])
        guard pending.count <= maximumLineLength else {
            throw KubeAPIError(.decoding, "a watch event is longer than \(maximumLineLength) bytes")
        }
        return lines
    }

    /// What is left when the stream ends: a final line without a newline.
    public mutating func finish() -> [UInt8]? {
        defer { pending = [] }
        return pending.isEmpty ? nil : pending
    }
}
