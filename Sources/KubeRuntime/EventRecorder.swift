public import Foundation
public import KubeClient
internal import KubeObjects
public import Logging
internal import Synchronization

/// Records core/v1 Events the way client-go's `tools/record` recorder does: a new event is
/// created as `<object>.<unix nanoseconds in hex>`; the same event again (same object, type,
/// reason and message) bumps that event's `count` and `lastTimestamp` with a strategic merge
/// patch instead of adding another (recording 07a). Best effort: a lost event never fails a
/// reconcile.
public final class EventRecorder: Sendable {
    /// The object an event is about.
    public struct InvolvedObject: Sendable, Hashable {
        public var apiVersion: String
        public var kind: String
        public var namespace: String?
        public var name: String
        public var uid: String?

        public init(apiVersion: String, kind: String, namespace: String?, name: String, uid: String?) {
            self.apiVersion = apiVersion
            self.kind = kind
            self.namespace = namespace
            self.name = name
            self.uid = uid
        }
    }

    public enum EventType: String, Sendable {
        case normal = "Normal"
        case warning = "Warning"
    }

    private struct Identity: Hashable {
        let object: InvolvedObject
        let type: EventType
        let reason: String
        let message: String
    }

    private struct Recorded {
        let name: String
        var count: Int
        var used: UInt64
    }

    /// Remembered events, least recently used dropped first (client-go keeps 4096 too).
    static let capacity = 4096

    private let client: KubeClient
    private let component: String
    private let logger: Logger
    private let now: @Sendable () -> Date
    /// By the identity's hash (the messages themselves need not be kept for thousands of
    /// events; a collision would only bump the count of another event).
    private let recorded = Mutex<(events: [Int: Recorded], clock: UInt64)>(([:], 0))

    public init(client: KubeClient, component: String, logger: Logger, now: @escaping @Sendable () -> Date = { Date() }) {
        self.client = client
        self.component = component
        self.logger = logger
        self.now = now
    }

    public func record(_ object: InvolvedObject, _ type: EventType, reason: String, message: String) async {
        let identity = Identity(object: object, type: type, reason: reason, message: message).hashValue
        let date = now()
        let timestamp = KubeTime.time(date)
        logger.info("\(object.namespace.map { "\($0)/" } ?? "")\(object.name): \(reason): \(message)")
        let repeated = recorded.withLock { state -> Recorded? in
            state.clock += 1
            guard var known = state.events[identity] else { return nil }
            known.count += 1
            known.used = state.clock
            state.events[identity] = known
            return known
        }
        if let repeated {
            let patch: JSONValue = ["count": .number(Double(repeated.count)), "lastTimestamp": .string(timestamp), "message": .string(message)]
            do {
                let _: Acknowledgement = try await client.patch(.events, namespace: object.namespace, name: repeated.name, .strategicMerge(patch))
                return
            } catch where error.isNotFound {
                // Expired (events live an hour by default): start a new one.
            } catch {
                logger.warning("cannot update event \(reason): \(error)")
                return
            }
        }
        let name = "\(object.name).\(String(UInt64(max(0, date.timeIntervalSince1970) * 1_000_000_000), radix: 16))"
        var involved: [String: JSONValue] = ["apiVersion": .string(object.apiVersion), "kind": .string(object.kind), "name": .string(object.name)]
        if let namespace = object.namespace { involved["namespace"] = .string(namespace) }
        if let uid = object.uid { involved["uid"] = .string(uid) }
        let event: JSONValue = [
            "apiVersion": "v1", "kind": "Event",
            "metadata": ["name": .string(name), "namespace": object.namespace.map { .string($0) } ?? .null],
            "involvedObject": .object(involved), "type": .string(type.rawValue), "reason": .string(reason), "message": .string(message),
            "firstTimestamp": .string(timestamp), "lastTimestamp": .string(timestamp), "count": 1,
            "source": ["component": .string(component)], "reportingComponent": .string(component), "reportingInstance": "",
        ]
        do {
            _ = try await client.create(.events, namespace: object.namespace, event, as: Acknowledgement.self)
            recorded.withLock { state in
                state.events[identity] = Recorded(name: name, count: 1, used: state.clock)
                if state.events.count > Self.capacity, let oldest = state.events.min(by: { $0.value.used < $1.value.used })?.key {
                    state.events[oldest] = nil
                }
            }
        } catch {
            logger.warning("cannot record event \(reason): \(error)")
        }
    }
}
