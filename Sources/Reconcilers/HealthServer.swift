internal import Foundation
internal import Sockets
internal import Synchronization
#if canImport(Glibc)
internal import Glibc
#endif

/// `/healthz`, `/readyz` and `/metrics` over plain HTTP for the kubelet's probes and
/// Prometheus: one short request per connection, served on a thread of its own.
public final class HealthServer: Sendable {
    public let port: Int
    private let listener: Int32
    /// nil when ready; else why not, for `/readyz`'s answer.
    private let unready = Mutex<String?>("caches not synced")
    private let metrics: Metrics

    public struct Failure: Error, CustomStringConvertible { public let description: String }

    /// Listens on `host:port` (port 0 picks a free one).
    public init(host: String, port: Int, metrics: Metrics) throws(Failure) {
        let listener: Int32
        do { (listener, self.port) = try TCPSocket.listen(host: host, port: port, backlog: 16) }
        catch { throw Failure(description: "\(error.description); pick another --health-address") }
        self.listener = listener
        self.metrics = metrics
        let server = self
        Thread.detachNewThread { server.serve() }
    }

    /// Ready once the caches have synced and every watch works (and, with leader election,
    /// whether or not we lead); `reason` says what is missing otherwise.
    public func setReady(_ value: Bool, reason: String = "caches not synced") { unready.withLock { $0 = value ? nil : reason } }

    public func stop() { TCPSocket.closeListener(listener) }

    private func serve() {
        TCPSocket.acceptConnections(on: listener) { client in
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var buffer = [UInt8](repeating: 0, count: 4096)
            let got = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            let line = got > 0 ? String(decoding: buffer[0..<got], as: UTF8.self).split(separator: "\r\n").first ?? "" : ""
            let path = line.split(separator: " ").dropFirst().first.map(String.init) ?? ""
            let (status, body): (Int, String)
            switch path {
            case "/healthz": (status, body) = (200, "ok\n")
            case "/readyz": (status, body) = unready.withLock { $0 }.map { (503, $0 + "\n") } ?? (200, "ok\n")
            case "/metrics": (status, body) = (200, metrics.render())
            default: (status, body) = (404, "not found\n")
            }
            let reason = [200: "OK", 404: "Not Found", 503: "Service Unavailable"][status] ?? "Status"
            let answer = Array("HTTP/1.1 \(status) \(reason)\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)".utf8)
            TCPSocket.send(client, answer)
            close(client)
        }
    }
}
