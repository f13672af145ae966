internal import Foundation
internal import Sockets
internal import Synchronization
#if canImport(Glibc)
internal import Glibc
#endif

/// A loopback HTTP proxy that stands between a client and a real server (moto) and injects
/// the failures object stores have in production: 503 SlowDown answers, connections reset
/// before the request reaches the server or in the middle of its body, answers lost after
/// the server acted (the client must cope with a retried request that already took effect),
/// and slow answers. Each connection
/// carries one exchange (`Connection: close`), which is all curl needs.
///
/// Faults are drawn from a seeded generator, so a failing run can be repeated.
public final class FaultProxy: Sendable {
    public enum Fault: String, Sendable, CaseIterable {
        case slowDown
        /// The connection breaks before the request is forwarded: the server never sees it.
        case resetBeforeAnswer
        case resetMidRequest
        /// The server gets the request and acts on it; its answer never reaches the client.
        case loseAnswer
        case delay
    }

    public struct Counts: Sendable {
        public var forwarded = 0
        public var injected: [Fault: Int] = [:]
        /// The request lines (`POST /bucket/key?uploads HTTP/1.1`) whose answers were lost
        /// after the server acted.
        public var lostAnswers: [String] = []
        public var totalInjected: Int { injected.values.reduce(0, +) }
    }

    /// A fault planned for the next requests whose request line matches.
    private struct Plan {
        let fault: Fault
        var remaining: Int
        let matches: @Sendable (String) -> Bool
    }

    public let port: Int
    public var endpoint: String { "http://127.0.0.1:\(port)" }
    private let upstreamPort: Int
    private let listener: Int32
    private let state: Mutex<(random: SeededRandom, counts: Counts, faultRate: Double, stopped: Bool, plans: [Plan])>

    /// Forwards to `upstream` (`http://127.0.0.1:PORT`), failing about `faultRate` of exchanges.
    public init(upstream: String, faultRate: Double, seed: UInt64) throws {
        guard let portText = upstream.split(separator: ":").last, let upstreamPort = Int(portText) else {
            throw ProxyError(message: "upstream must look like http://127.0.0.1:PORT, not \(upstream)")
        }
        self.upstreamPort = upstreamPort
        state = Mutex((SeededRandom(seed: seed), Counts(), faultRate, false, []))
        let (listener, port) = try TCPSocket.listen()
        self.port = port
        self.listener = listener
        let proxy = self
        Thread.detachNewThread { proxy.acceptLoop() }
    }

    public var counts: Counts { state.withLock { $0.counts } }

    /// Changes how often exchanges fail from now on (0 lets everything through).
    public func setFaultRate(_ rate: Double) { state.withLock { $0.faultRate = rate } }

    /// Injects `fault` into the next `times` requests whose request line (`POST /b/k?uploads
    /// HTTP/1.1`) `matches`, whatever the fault rate: for tests of one precise failure.
    public func inject(_ fault: Fault, times: Int = 1, whenRequestLine matches: @escaping @Sendable (String) -> Bool) {
        state.withLock { $0.plans.append(Plan(fault: fault, remaining: times, matches: matches)) }
    }

    public func stop() {
        state.withLock { $0.stopped = true }
        TCPSocket.closeListener(listener)
    }

    private func acceptLoop() {
        TCPSocket.acceptConnections(on: listener) { client in
            let proxy = self
            Thread.detachNewThread { proxy.serve(client) }
        }
    }

    private func drawFault(for line: String) -> Fault? {
        state.withLock { state in
            if let index = state.plans.firstIndex(where: { $0.remaining > 0 && $0.matches(line) }) {
                state.plans[index].remaining -= 1
                let fault = state.plans[index].fault
                state.counts.injected[fault, default: 0] += 1
                if fault == .loseAnswer { state.counts.lostAnswers.append(line) }
                return fault
            }
            guard state.random.nextDouble() < state.faultRate else {
                state.counts.forwarded += 1
                return nil
            }
            let fault = Fault.allCases[Int(state.random.next() % UInt64(Fault.allCases.count))]
            state.counts.injected[fault, default: 0] += 1
            if fault == .loseAnswer { state.counts.lostAnswers.append(line) }
            return fault
        }
    }

    private func serve(_ client: Int32) {
        defer { close(client) }
        guard var request = readHead(client) else { return }
        let fault = drawFault(for: request.line)
        if fault == .resetMidRequest, request.bodyLength > 0 {
            // Read part of the body, then reset: the client sees its upload cut off.
            _ = readBody(client, count: max(0, request.bodyLength / 2 - request.body.count), into: &request)
            reset(client)
            return
        }
        guard readBody(client, count: request.bodyLength - request.body.count, into: &request) else { return }
        switch fault {
        case .slowDown:
            let body = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
            send(client, Array("HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)".utf8))
            return
        case .resetBeforeAnswer, .resetMidRequest:
            reset(client)
            return
        case .loseAnswer:
            _ = forward(request)
            reset(client)
            return
        case .delay:
            usleep(useconds_t(Int.random(in: 100_000...400_000)))
        case nil:
            break
        }
        guard let answer = forward(request) else {
            reset(client)
            return
        }
        send(client, answer)
    }

    private struct Request {
        /// `METHOD /path?query HTTP/1.1`
        var line: String
        var head: [UInt8]
        var body: [UInt8]
        var bodyLength: Int
    }

    /// Reads the request line and headers; the head is rewritten to close after one exchange.
    private func readHead(_ socket: Int32) -> Request? {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let got = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if got <= 0 { return nil }
            data.append(contentsOf: buffer[0..<got])
            if let end = Self.find([13, 10, 13, 10], in: data) {
                let headText = String(decoding: data[0..<end], as: UTF8.self)
                var lines = headText.components(separatedBy: "\r\n").filter { !$0.lowercased().hasPrefix("connection:") }
                let length = lines.compactMap { line -> Int? in
                    let parts = line.split(separator: ":", maxSplits: 1)
                    guard parts.count == 2, parts[0].lowercased() == "content-length" else { return nil }
                    return Int(parts[1].trimmingCharacters(in: .whitespaces))
                }.first ?? 0
                lines.append("Connection: close")
                return Request(line: lines.first ?? "", head: Array((lines.joined(separator: "\r\n") + "\r\n\r\n").utf8),
                               body: Array(data[(end + 4)...]), bodyLength: length)
            }
        }
    }

    private func readBody(_ socket: Int32, count: Int, into request: inout Request) -> Bool {
        var remaining = count
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while remaining > 0 {
            let got = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, min($0.count, remaining), 0) }
            if got <= 0 { return false }
            request.body.append(contentsOf: buffer[0..<got])
            remaining -= got
        }
        return true
    }

    /// Sends the request upstream and returns the whole answer (upstream closes after it).
    private func forward(_ request: Request) -> [UInt8]? {
        guard let upstream = TCPSocket.connect(port: upstreamPort) else { return nil }
        defer { close(upstream) }
        guard send(upstream, request.head), send(upstream, request.body) else { return nil }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let got = buffer.withUnsafeMutableBytes { recv(upstream, $0.baseAddress, $0.count, 0) }
            if got < 0 { return nil }
            if got == 0 { return answer }
            answer.append(contentsOf: buffer[0..<got])
        }
    }

    @discardableResult
    private func send(_ socket: Int32, _ bytes: [UInt8]) -> Bool { TCPSocket.send(socket, bytes) }

    /// Closes with an RST instead of a FIN: what a dropped connection looks like to the client.
    private func reset(_ socket: Int32) {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(socket, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for index in 0...(haystack.count - needle.count) where haystack[index] == needle[0] {
            if Array(haystack[index..<(index + needle.count)]) == needle { return index }
        }
        return nil
    }
}

public struct ProxyError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
