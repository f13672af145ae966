#if canImport(Glibc)
internal import Glibc
#endif

/// Writes all of `bytes` to `descriptor`: again after a signal interrupts the call, and on
/// after a short write (pipes take what fits). Returns the `errno` of a write that failed,
/// nil once everything is written. Blocks.
public func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32? {
    var offset = 0
    while offset < bytes.count {
        let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
        if written < 0 {
            if errno == EINTR { continue }
            return errno
        }
        offset += written
    }
    return nil
}
