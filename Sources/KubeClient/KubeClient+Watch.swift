internal import KubeObjects
internal import Foundation
internal import HTTP

/// One event of a watch.
public enum WatchEvent<Object: Decodable & Sendable>: Sendable {
    case added(Object)
    case modified(Object)
    case deleted(Object)
    /// Progress without a change: the resourceVersion to resume from.
    case bookmark(resourceVersion: String)
    /// The server ended the watch with a Status, e.g. 410 Expired: relist.
    case error(KubeAPIError)

    static func decode(_ line: [UInt8]) throws(KubeAPIError) -> WatchEvent {
        let data = Data(line)
        // Objects that read themselves from parsed JSON: one parse, no `JSONDecoder`.
        if Object.self is any JSONValueDecodable.Type || Object.self == JSONValue.self {
            do {
                let event = try JSONValue.decode(data, skipping: KubeClient.unreadFields(of: Object.self, under: ["object"]))
                let object = event["object"] ?? .null
                switch event["type"]?.string {
                case "ADDED": if let value = try KubeClient.fastDecode(Object.self, object) { return .added(value) }
                case "MODIFIED": if let value = try KubeClient.fastDecode(Object.self, object) { return .modified(value) }
                case "DELETED": if let value = try KubeClient.fastDecode(Object.self, object) { return .deleted(value) }
                default: break  // bookmarks and errors below
                }
            } catch {
                throw KubeAPIError(.decoding, "cannot decode a watch event: \(error)")
            }
        }
        do {
            switch try JSONDecoder().decode(WatchEventType.self, from: data).type {
            case "ADDED": return .added(try JSONDecoder().decode(WatchEventBody<Object>.self, from: data).object)
            case "MODIFIED": return .modified(try JSONDecoder().decode(WatchEventBody<Object>.self, from: data).object)
            case "DELETED": return .deleted(try JSONDecoder().decode(WatchEventBody<Object>.self, from: data).object)
            case "BOOKMARK":
                return .bookmark(resourceVersion: try JSONDecoder().decode(WatchEventBody<BookmarkObject>.self, from: data).object.metadata.resourceVersion)
            case "ERROR":
                let status = try JSONDecoder().decode(WatchEventBody<KubeStatus>.self, from: data).object
                return .error(KubeAPIError(.api, "watch ended: \(status.code ?? 0) \(status.reason ?? ""): \(status.message ?? "")",
                                           code: status.code, reason: status.reason))
            case let other:
                throw KubeAPIError(.decoding, "unknown watch event type \(other)")
            }
        } catch let error as KubeAPIError {
            throw error
        } catch {
            throw KubeAPIError(.decoding, "cannot decode a watch event: \(error)")
        }
    }
}

private struct WatchEventType: Decodable { let type: String }
private struct WatchEventBody<Object: Decodable>: Decodable { let object: Object }
private struct BookmarkObject: Decodable {
    struct Metadata: Decodable { let resourceVersion: String }
    let metadata: Metadata
}

extension KubeClient {
    /// Watches a collection from `resourceVersion`. Events arrive in order; the transfer
    /// thread waits while `bufferSize` events are unread (backpressure), and stops when the
    /// sequence is dropped or its task cancelled. The sequence ends when the server closes
    /// the watch (after `timeoutSeconds`); a broken connection throws.
    public func watch<T: Decodable & Sendable>(_ type: ResourceType, namespace: String? = nil, resourceVersion: String?,
                                               labelSelector: String? = nil, timeoutSeconds: Int = 300, allowBookmarks: Bool = true,
                                               bufferSize: Int = 64, as: T.Type = T.self) throws(KubeAPIError) -> WatchStream<WatchEvent<T>> {
        var query = [("watch", "true"), ("timeoutSeconds", "\(timeoutSeconds)")]
        if let resourceVersion { query.append(("resourceVersion", resourceVersion)) }
        if let labelSelector { query.append(("labelSelector", labelSelector)) }
        if allowBookmarks { query.append(("allowWatchBookmarks", "true")) }
        let request = HTTPRequest(method: "GET", url: url(type.path(namespace: namespace), query: query),
                                  headers: try headers(contentType: nil), stallTimeout: .seconds(timeoutSeconds + 60))
        let buffer = WatchBuffer<WatchEvent<T>>(capacity: bufferSize)
        let http = http
        let what = "watch \(type)"
        Thread.detachNewThread {
            var splitter = WatchLineSplitter()
            var failure: KubeAPIError?
            do throws(HTTPError) {
                let response = try http.perform(request) { bytes in
                    do {
                        for line in try splitter.push(bytes) {
                            guard buffer.push(try WatchEvent<T>.decode(line)) else { return false }
                        }
                        return true
                    } catch {
                        failure = error as? KubeAPIError ?? KubeAPIError(.decoding, "\(error)")
                        return false
                    }
                }
                if failure == nil, !(200..<300).contains(response.status) {
                    failure = KubeClient.apiError(status: response.status, body: response.body, what: what)
                }
            } catch {
                failure = KubeAPIError(.transport, "\(what): \(error.message)")
            }
            buffer.finish(throwing: failure)
        }
        return WatchStream(buffer: buffer)
    }
}

/// The events of one watch, as an `AsyncSequence` whose producer waits for the consumer.
public struct WatchStream<Element: Sendable>: AsyncSequence, Sendable {
    let buffer: WatchBuffer<Element>

    public func makeAsyncIterator() -> Iterator { Iterator(buffer: buffer) }

    /// Stops the watch: the transfer ends at its next event.
    public func cancel() { buffer.cancel() }

    public struct Iterator: AsyncIteratorProtocol {
        let buffer: WatchBuffer<Element>

        public mutating func next() async throws -> Element? {
            try await withTaskCancellationHandler {
                try await buffer.next()
            } onCancel: { [buffer] in
                buffer.cancel()
            }
        }
    }
}

/// A bounded hand-over between the transfer thread and the consuming task; guarded by `lock`.
final class WatchBuffer<Element: Sendable>: @unchecked Sendable {
    private let lock = NSCondition()
    private var items: [Element] = []
    private let capacity: Int
    private var finished = false
    private var failure: KubeAPIError?
    private var cancelled = false
    private var waiter: CheckedContinuation<Element?, any Error>?

    init(capacity: Int) { self.capacity = capacity }

    /// Called by the transfer thread; blocks while full. `false` once the consumer is gone.
    func push(_ element: Element) -> Bool {
        lock.lock()
        while items.count >= capacity && !cancelled { lock.wait() }
        if cancelled {
            lock.unlock()
            return false
        }
        if let waiter {
            self.waiter = nil
            lock.unlock()
            waiter.resume(returning: element)
            return true
        }
        items.append(element)
        lock.unlock()
        return true
    }

    func finish(throwing error: KubeAPIError?) {
        lock.lock()
        finished = true
        failure = error
        let waiter = waiter
        self.waiter = nil
        lock.unlock()
        if let waiter {
            if let error, !cancelled { waiter.resume(throwing: error) } else { waiter.resume(returning: nil) }
        }
    }

    func cancel() {
        lock.lock()
        cancelled = true
        let waiter = waiter
        self.waiter = nil
        lock.broadcast()
        lock.unlock()
        waiter?.resume(returning: nil)
    }

    func next() async throws -> Element? {
        try await withCheckedThrowingContinuation { continuation in
            lock.lock()
            if !items.isEmpty {
                let element = items.removeFirst()
                lock.signal()
                lock.unlock()
                continuation.resume(returning: element)
            } else if finished || cancelled {
                let error = cancelled ? nil : failure
                failure = nil
                lock.unlock()
                if let error { continuation.resume(throwing: error) } else { continuation.resume(returning: nil) }
            } else {
                waiter = continuation
                lock.unlock()
            }
        }
    }
}
