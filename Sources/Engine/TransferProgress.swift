internal import Foundation
internal import Logging
internal import Synchronization

/// Counters shared between a streaming thread and the task that prints progress, plus the
/// flag that asks the streaming thread to stop.
final class TransferProgress: Sendable {
    /// Bytes read from the source (pg_dump's output, or the stored object).
    let bytes = Atomic<Int64>(0)
    let cancelled = Atomic<Bool>(false)

    func add(_ count: Int) {
        bytes.add(Int64(count), ordering: .relaxed)
    }

    var isCancelled: Bool { cancelled.load(ordering: .relaxed) }

    func cancel() { cancelled.store(true, ordering: .relaxed) }

    /// Prints a line every `interval` until the task is cancelled: bytes, rate, elapsed and,
    /// when `expectedBytes` is known, an ETA.
    static func report(_ progress: TransferProgress, label: String, expectedBytes: Int64?,
                       interval: Duration, logger: Logger) async {
        let clock = ContinuousClock()
        let start = clock.now
        while !Task.isCancelled {
            do { try await Task.sleep(for: interval) } catch { return }
            let bytes = progress.bytes.load(ordering: .relaxed)
            let elapsed = (clock.now - start) / .seconds(1)
            let rate = elapsed > 0 ? Double(bytes) / elapsed : 0
            var line = "\(label): \(formatBytes(bytes)), \(formatBytes(Int64(rate)))/s, \(Int(elapsed))s elapsed"
            if let expectedBytes, rate > 0, expectedBytes > bytes {
                line += ", ETA \(Int(Double(expectedBytes - bytes) / rate))s"
            }
            logger.info("\(line)")
        }
    }
}

/// `512.0 MiB`
func formatBytes(_ bytes: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
}
