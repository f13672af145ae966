internal import COpenSSL
public import BackstopAPI
internal import Foundation

/// The 32-byte AES-256 key of a backup. Never printed: its description is `<redacted>`.
public struct EncryptionKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public static let byteCount = 32

    /// scrypt's cost: 2^15 × 8 × 128 bytes = 32 MiB and about 0.1 s, once per run.
    public static let defaultScryptParameters = (n: UInt64(1) << 15, r: UInt64(8), p: UInt64(1))

    let bytes: [UInt8]
    /// How a passphrase became this key, to record in the manifest; `nil` for key files.
    public let derivation: BackupManifest.KeyDerivation?

    init(bytes: [UInt8], derivation: BackupManifest.KeyDerivation?) {
        self.bytes = bytes
        self.derivation = derivation
    }

    /// A key file holds 32 raw bytes, or their base64 as a Kubernetes Secret stores it
    /// (surrounding whitespace allowed). `source` names the file (and the option) in errors.
    public init(keyFileContents contents: [UInt8], source: String) throws(PipelineError) {
        if contents.count == Self.byteCount {
            self.init(bytes: contents, derivation: nil)
            return
        }
        let text = String(decoding: contents, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let decoded = Data(base64Encoded: text), decoded.count == Self.byteCount else {
            throw PipelineError(
                .invalidKey,
                "\(source) holds \(contents.count) bytes that are neither 32 raw bytes nor their base64; create one with `openssl rand 32 > key` or `openssl rand -base64 32 > key`")
        }
        self.init(bytes: [UInt8](decoded), derivation: nil)
    }

    /// Stretches a passphrase with scrypt. Pass the manifest's derivation to re-derive the key
    /// of an existing backup; pass `nil` to create a new salt.
    public init(passphrase: [UInt8], derivation existing: BackupManifest.KeyDerivation? = nil) throws(PipelineError) {
        var passphrase = passphrase
        while let last = passphrase.last, last == 0x0A || last == 0x0D { passphrase.removeLast() }
        guard !passphrase.isEmpty else {
            throw PipelineError(.invalidKey, "the passphrase file is empty; put the passphrase in it")
        }
        let derivation: BackupManifest.KeyDerivation
        let salt: [UInt8]
        if let existing {
            guard existing.name == "scrypt", let decoded = Data(base64Encoded: existing.salt) else {
                throw PipelineError(.invalidKey, "the manifest's key derivation \(existing.name) is not scrypt with a base64 salt; the manifest is damaged")
            }
            derivation = existing
            salt = [UInt8](decoded)
        } else {
            salt = try randomBytes(16)
            let parameters = Self.defaultScryptParameters
            derivation = .init(name: "scrypt", salt: Data(salt).base64EncodedString(),
                               n: parameters.n, r: parameters.r, p: parameters.p)
        }
        var key = [UInt8](repeating: 0, count: Self.byteCount)
        let maxMemory = 128 * derivation.r * derivation.n * 2 + 1024 * 1024
        let status = EVP_PBE_scrypt(passphrase.map { CChar(bitPattern: $0) }, passphrase.count, salt, salt.count,
                                    derivation.n, derivation.r, derivation.p, maxMemory, &key, key.count)
        guard status == 1 else {
            throw PipelineError(.crypto, "scrypt failed with N=\(derivation.n) r=\(derivation.r) p=\(derivation.p): \(openSSLMessage())")
        }
        self.init(bytes: key, derivation: derivation)
    }

    /// `hmac-sha256:` and 16 hex digits: tells keys apart without revealing anything usable.
    public var fingerprint: String {
        "hmac-sha256:" + Array(hmacSHA256(key: bytes, message: Array("backstop/v1/key-fingerprint".utf8)).prefix(8)).hexString
    }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
}

/// HMAC-SHA256 through OpenSSL's one-shot MAC.
func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: 32)
    var length = 0
    _ = EVP_Q_mac(nil, "HMAC", nil, "SHA256", nil, key, key.count, message, message.count, &out, out.count, &length)
    return out
}

/// Cryptographically random bytes from OpenSSL.
public func randomBytes(_ count: Int) throws(PipelineError) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    guard RAND_bytes(&bytes, Int32(count)) == 1 else {
        throw PipelineError(.crypto, "OpenSSL could not produce random bytes: \(openSSLMessage())")
    }
    return bytes
}

func openSSLMessage() -> String {
    let code = ERR_get_error()
    guard code != 0 else { return "no detail" }
    var buffer = [CChar](repeating: 0, count: 256)
    ERR_error_string_n(code, &buffer, buffer.count)
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
