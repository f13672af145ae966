import Foundation
import KubeClient
import Testing

@Suite("Watch stream decoding")
struct WatchDecodingTests {
    @Test("lines come out whole however the bytes are chunked", arguments: [1, 2, 3, 7, 64, 4096, 1 << 20])
    func chunkings(_ seed: Int) throws {
        var random = SystemRandomNumberGenerator()
        let long = String(repeating: "x", count: 300_000)
        let lines = (0..<200).map { index in
            index == 37 ? "{\"type\":\"ADDED\",\"object\":{\"data\":\"\(long)\"}}" : "{\"type\":\"MODIFIED\",\"n\":\(index),\"s\":\"ü\\n\"}"
        }
        let bytes = Array(lines.joined(separator: "\n").utf8) + [UInt8(ascii: "\n")]
        var splitter = WatchLineSplitter()
        var out: [String] = []
        var offset = 0
        while offset < bytes.count {
            let size = seed == 1 ? 1 : Int.random(in: 1...max(1, seed), using: &random)
            let end = min(bytes.count, offset + size)
            out += try bytes[offset..<end].withUnsafeBytes { try splitter.push($0) }.map { String(decoding: $0, as: UTF8.self) }
            offset = end
        }
        #expect(splitter.finish() == nil)
        #expect(out == lines)
    }

    @Test("an over-long line is an error, not unbounded memory")
    func overLong() {
        var splitter = WatchLineSplitter(maximumLineLength: 1000)
        #expect(throws: KubeAPIError.self) { _ = try [UInt8](repeating: 65, count: 2000).withUnsafeBytes { try splitter.push($0) } }
    }
}
