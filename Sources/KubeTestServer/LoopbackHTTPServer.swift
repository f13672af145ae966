internal import Foundation
internal import Sockets
internal import Synchronization
#if canImport(Glibc)
internal import Glibc
#endif

/// A small HTTP/1.1 server on 127.0.0.1 for tests: one thread per connection, keep-alive,
/// Content-Length request bodies, and chunked streaming answers (watches). Public for tests
/// that need a receiver of their own (notification webhooks).
public final class LoopbackHTTPServer: Sendable {
    public struct Request: Sendable {
        public let method: String
        public let path: String
        public let query: [String: String]
        public let headers: [String: String]
        public let body: [UInt8]
    }

    public enum Response: Sendable {
        case full(status: Int, contentType: String, body: [UInt8])
        /// Writes chunks until it returns; `write` reports false once the client is gone.
        case stream(status: Int, contentType: String, body: @Sendable (_ write: (String) -> Bool) -> Void)
    }

    public let port: Int
    private let listener: Int32
    private let handler: @Sendable (Request) -> Response
    private let connections = Mutex<Set<Int32>>([])

    public init(handler: @escaping @Sendable (Request) -> Response) throws {
        let (listener, port) = try TCPSocket.listen()
        self.port = port
        self.listener = listener
        self.handler = handler
        let server = self
        Thread.detachNewThread { server.acceptLoop() }
    }

    public func stop() {
        TCPSocket.closeListener(listener)
        dropConnections()
    }

    /// Cuts every open connection (watches included), as a restarted API server would.
    func dropConnections() {
        for socket in connections.withLock({ $0 }) { shutdown(socket, Int32(SHUT_RDWR)) }
    }

    private func acceptLoop() {
        TCPSocket.acceptConnections(on: listener) { client in
            var yes: Int32 = 1
            setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &yes, socklen_t(MemoryLayout<Int32>.size))
            connections.withLock { _ = $0.insert(client) }
            let server = self
            Thread.detachNewThread { server.serve(client) }
        }
    }

    private func serve(_ client: Int32) {
        defer {
            connections.withLock { _ = $0.remove(client) }
            close(client)
        }
        var reader = ConnectionReader(socket: client)
        while let request = reader.readRequest() {
            switch handler(request) {
            case let .full(status, contentType, body):
                let head = "HTTP/1.1 \(status) \(Self.reason(status))\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n\r\n"
                guard send(client, Array(head.utf8) + body) else { return }
            case let .stream(status, contentType, body):
                let head = "HTTP/1.1 \(status) \(Self.reason(status))\r\nContent-Type: \(contentType)\r\nTransfer-Encoding: chunked\r\n\r\n"
                guard send(client, Array(head.utf8)) else { return }
                var open = true
                body { text in
                    guard open, !text.isEmpty else { return open }
                    let bytes = Array(text.utf8)
                    open = send(client, Array((String(bytes.count, radix: 16) + "\r\n").utf8) + bytes + Array("\r\n".utf8))
                    return open
                }
                guard open, send(client, Array("0\r\n\r\n".utf8)) else { return }
            }
        }
    }

    private func send(_ socket: Int32, _ bytes: [UInt8]) -> Bool { TCPSocket.send(socket, bytes) }

    static func reason(_ status: Int) -> String {
        [200: "OK", 201: "Created", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
         409: "Conflict", 410: "Gone", 415: "Unsupported Media Type", 422: "Unprocessable Entity", 429: "Too Many Requests",
         500: "Internal Server Error"][status] ?? "Status"
    }
}

/// Reads requests off one connection.
private struct ConnectionReader {
    let socket: Int32
    var buffered: [UInt8] = []

    mutating func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let got = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
        guard got > 0 else { return false }
        buffered.append(contentsOf: chunk[0..<got])
        return true
    }

    mutating func readRequest() -> LoopbackHTTPServer.Request? {
        var headEnd: Int?
        while headEnd == nil {
            headEnd = Self.find(buffered)
            if headEnd == nil, !fill() { return nil }
        }
        guard let end = headEnd else { return nil }
        // Byte-level parsing: Foundation's string searching and trimming were a tenth of the
        // server's time under the controller bench.
        let lines = buffered[0..<end].split(separator: 10, omittingEmptySubsequences: false)
        buffered.removeFirst(end + 4)
        guard let first = lines.first else { return nil }
        let requestLine = String(decoding: Self.trimmed(first), as: UTF8.self).split(separator: " ")
        guard requestLine.count >= 2 else { return nil }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
            headers[String(decoding: line[..<colon], as: UTF8.self).lowercased()] = String(decoding: Self.trimmed(line[(colon + 1)...]), as: UTF8.self)
        }
        var body: [UInt8] = []
        if headers["transfer-encoding"]?.lowercased() == "chunked" {
            guard let chunked = readChunked() else { return nil }
            body = chunked
        } else {
            let length = Int(headers["content-length"] ?? "0") ?? 0
            while buffered.count < length { if !fill() { return nil } }
            body = Array(buffered[0..<length])
            buffered.removeFirst(length)
        }
        let target = requestLine[1]
        let parts = target.split(separator: "?", maxSplits: 1)
        var query: [String: String] = [:]
        if parts.count == 2 {
            for pair in parts[1].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                query[Self.formDecoded(kv[0])] = kv.count > 1 ? Self.formDecoded(kv[1]) : ""
            }
        }
        return .init(method: String(requestLine[0]), path: String(parts[0]), query: query, headers: headers, body: body)
    }

    /// Without the spaces, tabs and carriage return around it.
    static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        let blank: (UInt8) -> Bool = { $0 == 32 || $0 == 9 || $0 == 13 }
        guard let start = bytes.firstIndex(where: { !blank($0) }), let end = bytes.lastIndex(where: { !blank($0) }) else { return [] }
        return bytes[start...end]
    }

    /// A query component as `application/x-www-form-urlencoded` writes it: `+` is a space,
    /// `%XX` a byte; a malformed escape is kept as it is.
    static func formDecoded(_ text: Substring) -> String {
        guard text.contains(where: { $0 == "%" || $0 == "+" }) else { return String(text) }
        let bytes = Array(text.utf8)
        var decoded: [UInt8] = []
        decoded.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%"), index + 2 < bytes.count,
               let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2]) {
                decoded.append(high << 4 | low)
                index += 3
                continue
            }
            decoded.append(byte == UInt8(ascii: "+") ? UInt8(ascii: " ") : byte)
            index += 1
        }
        return String(decoding: decoded, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private mutating func readChunked() -> [UInt8]? {
        var body: [UInt8] = []
        while true {
            var lineEnd: Int?
            while lineEnd == nil {
                lineEnd = Self.find(buffered, [13, 10])
                if lineEnd == nil, !fill() { return nil }
            }
            guard let end = lineEnd, let size = Int(String(decoding: buffered[0..<end], as: UTF8.self).split(separator: ";")[0], radix: 16) else { return nil }
            buffered.removeFirst(end + 2)
            while buffered.count < size + 2 { if !fill() { return nil } }
            body += buffered[0..<size]
            buffered.removeFirst(size + 2)
            if size == 0 { return body }
        }
    }

    static func find(_ bytes: [UInt8], _ needle: [UInt8] = [13, 10, 13, 10]) -> Int? {
        guard bytes.count >= needle.count else { return nil }
        return bytes.withUnsafeBufferPointer { buffer in
            (0...(buffer.count - needle.count)).first { index in
                buffer[index] == needle[0] && needle.indices.allSatisfy { buffer[index + $0] == needle[$0] }
            }
        }
    }
}
