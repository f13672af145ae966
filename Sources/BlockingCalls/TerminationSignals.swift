import Foundation

/// Runs `body` so that SIGTERM and SIGINT cancel it instead of killing the process: the
/// worker stops pg_dump and removes partial objects, the controller releases its Lease.
/// The signals' default action is restored afterwards.
public func runInterruptibly<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let task = Task { try await body() }
    let sources = [SIGTERM, SIGINT].map { number in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number)
        source.setEventHandler { task.cancel() }
        source.resume()
        return source
    }
    defer {
        sources.forEach { $0.cancel() }
        signal(SIGTERM, SIG_DFL)
        signal(SIGINT, SIG_DFL)
    }
    return try await task.value
}
