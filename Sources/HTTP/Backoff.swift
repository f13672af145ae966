/// How long to wait before retrying, growing exponentially with each failure up to a cap,
/// with jitter so that many clients failing together do not retry together: a delay drawn
/// from [ceiling/2, ceiling], where ceiling = base × 2^failures (at most `cap`). One type for
/// every retry in Backstop: S3 requests, Kubernetes API requests, watches and work queues.
public struct Backoff: Sendable {
    public var base: Duration
    public var cap: Duration

    public init(base: Duration = .milliseconds(100), cap: Duration = .seconds(30)) {
        self.base = base
        self.cap = cap
    }

    public func delay(afterFailures failures: Int) -> Duration {
        let ceiling = min(cap / .seconds(1), base / .seconds(1) * Double(1 << min(max(failures, 0), 30)))
        return .milliseconds(Int(Double.random(in: (ceiling / 2)...ceiling) * 1000))
    }
}
