/// FNV-1a, 64 bits: a hash that is the same in every process and Swift version (`Hasher` is
/// seeded per process), for what is written down or compared across restarts.
public struct FNV1a: Sendable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    public mutating func combine(_ byte: UInt8) {
        value = (value ^ UInt64(byte)) &* 0x100_0000_01b3
    }

    public mutating func combine(_ bytes: some Sequence<UInt8>) {
        for byte in bytes { combine(byte) }
    }

    /// An array's bytes, read in place (the generic path costs an iterator call per byte).
    public mutating func combine(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { buffer in
            for byte in buffer { combine(byte) }
        }
    }

    /// A string's UTF-8 bytes, read from its contiguous storage: the generic sequence path
    /// costs an iterator call per byte, and field-set hashes run over every managed field.
    public mutating func combine(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            for byte in bytes { combine(byte) }
        }
    }

    /// The sixteen hex digits of a string's hash (names shortened with a hash, spec hashes).
    public static func hex(of text: String) -> String {
        var hash = FNV1a()
        hash.combine(text)
        return hash.hex
    }

    /// The same of bytes.
    public static func hex(of bytes: [UInt8]) -> String {
        var hash = FNV1a()
        hash.combine(bytes)
        return hash.hex
    }

    /// Sixteen hex digits.
    public var hex: String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
