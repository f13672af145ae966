internal import KubeObjects
public import HTTP
public import KubeClient

/// Keeps a view of a collection current, as an explicit state machine (kube-rs's watcher):
/// `empty` lists, `listed` starts a watch from the list's resourceVersion, `watching` follows
/// it and resumes from the last version seen when the stream ends or breaks. A 410 Gone sends
/// it back to `empty` (a relist, reported as `restarted`); other errors keep the state and
/// back off.
public struct Watcher<Object: KubeObject>: Sendable {
    public enum Event: Sendable {
        /// The complete current set, after a (re)list.
        case restarted([Object])
        case applied(Object)
        case deleted(Object)
    }

    enum State: Sendable, Equatable {
        case empty
        case listed(resourceVersion: String)
        case watching(resourceVersion: String)
    }

    let client: KubeClient
    let resource: ResourceType
    let namespace: String?
    let labelSelector: String?
    let backoff: Backoff
    /// The server closes each watch after this long; the watcher then resumes.
    let watchTimeoutSeconds: Int

    public init(client: KubeClient, resource: ResourceType, namespace: String? = nil, labelSelector: String? = nil,
                backoff: Backoff = Backoff(), watchTimeoutSeconds: Int = 290) {
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.labelSelector = labelSelector
        self.backoff = backoff
        self.watchTimeoutSeconds = watchTimeoutSeconds
    }

    /// `cronjobs.batch in namespace shop`: what this watcher watches, for messages.
    public var scope: String {
        "\(resource)" + (namespace.map { " in namespace \($0)" } ?? " in all namespaces") + (labelSelector.map { " (\($0))" } ?? "")
    }

    /// Runs until the task is cancelled, handing every event to `handle` in order (and
    /// waiting for it: the handler's pace is the watcher's). Failures back off, and are
    /// reported to `health` (which logs them) until a step works again.
    public func run(reportingTo health: APIAccessHealth? = nil, _ handle: @Sendable (Event) async -> Void) async {
        var state = State.empty
        var failures = 0
        while !Task.isCancelled {
            let (next, failure) = await step(state, handle)
            guard let failure else {
                health?.recovered(scope)
                state = next
                failures = 0
                continue
            }
            if failure.isGone {
                state = .empty  // our version is too old: list again
                continue
            }
            if !Task.isCancelled {
                health?.failed(scope, verb: { if case .empty = state { "list" } else { "watch" } }(), error: failure)
            }
            state = next
            failures += 1
            try? await Task.sleep(for: backoff.delay(afterFailures: failures))
        }
    }

    /// One transition. On failure the returned state still carries the last version delivered,
    /// so a retry neither repeats nor skips an event.
    func step(_ state: State, _ handle: @Sendable (Event) async -> Void) async -> (State, KubeAPIError?) {
        switch state {
        case .empty:
            do {
                // Pages of 100: a page is parsed whole before its items are kept, and a smaller
                // page keeps that transient tree (and so the process's peak memory) small.
                let (items, version) = try await client.listAll(resource, namespace: namespace, labelSelector: labelSelector, pageSize: 100,
                                                                as: Object.self)
                await handle(.restarted(items))
                return (.listed(resourceVersion: version), nil)
            } catch {
                return (.empty, error)
            }
        case .listed(let version), .watching(let version):
            var latest = version
            let stream: WatchStream<WatchEvent<Object>>
            do {
                stream = try client.watch(resource, namespace: namespace, resourceVersion: version, labelSelector: labelSelector,
                                          timeoutSeconds: watchTimeoutSeconds, as: Object.self)
            } catch {
                return (state, error)
            }
            defer { stream.cancel() }
            do {
                for try await event in stream {
                    switch event {
                    case .added(let object), .modified(let object):
                        latest = object.metadata.resourceVersion ?? latest
                        await handle(.applied(object))
                    case .deleted(let object):
                        latest = object.metadata.resourceVersion ?? latest
                        await handle(.deleted(object))
                    case .bookmark(let version):
                        latest = version
                    case .error(let error):
                        return (.watching(resourceVersion: latest), error)
                    }
                    if Task.isCancelled { break }
                }
            } catch {
                return (.watching(resourceVersion: latest), error as? KubeAPIError ?? KubeAPIError(.transport, "\(error)"))
            }
            return (.watching(resourceVersion: latest), nil)
        }
    }
}
