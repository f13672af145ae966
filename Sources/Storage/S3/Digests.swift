internal import COpenSSL
internal import Foundation

/// The few one-shot digests S3 needs, on OpenSSL's EVP interface.
enum Digests {
    static func sha256(_ bytes: some ContiguousBytes) -> [UInt8] {
        digest(bytes, EVP_sha256(), length: 32)
    }

    static func md5(_ bytes: some ContiguousBytes) -> [UInt8] {
        digest(bytes, EVP_md5(), length: 16)
    }

    static func hmacSHA256(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        key.withUnsafeBytes { key in
            message.withUnsafeBytes { message in
                _ = HMAC(EVP_sha256(), key.baseAddress, Int32(key.count),
                         message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count, &output, &length)
            }
        }
        return output
    }

    private static func digest(_ bytes: some ContiguousBytes, _ type: OpaquePointer?, length: Int) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: length)
        var size: UInt32 = 0
        bytes.withUnsafeBytes { bytes in
            // EVP_Digest only fails on allocation failure, which Swift treats as fatal anyway.
            _ = EVP_Digest(bytes.baseAddress, bytes.count, &output, &size, type, nil)
        }
        return output
    }
}

extension Array where Element == UInt8 {
    var hexString: String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(count * 2)
        for byte in self {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    var base64String: String { Data(self).base64EncodedString() }
}
