internal import BackstopAPI
internal import Pipeline
internal import Foundation

/// Where the encryption key comes from: a key file (32 raw bytes or base64, as a
/// Kubernetes Secret stores it) or a passphrase file stretched with scrypt.
public enum EncryptionSource: Sendable, Equatable {
    case none
    case keyFile(String)
    case passphraseFile(String)

    /// From `--encryption-key-file` and `--passphrase-file`; both at once is an error.
    public init(keyFile: String?, passphraseFile: String?) throws(EngineError) {
        switch (keyFile, passphraseFile) {
        case (nil, nil): self = .none
        case (let key?, nil): self = .keyFile(key)
        case (nil, let passphrase?): self = .passphraseFile(passphrase)
        case (_?, _?):
            throw EngineError(.invalidOption, "--encryption-key-file and --passphrase-file are exclusive; give one of them")
        }
    }

    /// A key for a new backup (a new scrypt salt for passphrases); `nil` when not encrypting.
    func keyForNewBackup() throws(EngineError) -> EncryptionKey? {
        switch self {
        case .none: return nil
        case .keyFile(let path):
            do { return try EncryptionKey(keyFileContents: read(path, option: "--encryption-key-file"), source: path) }
            catch { throw EngineError.wrapping(error) }
        case .passphraseFile(let path):
            do { return try EncryptionKey(passphrase: read(path, option: "--passphrase-file")) }
            catch { throw EngineError.wrapping(error) }
        }
    }

    /// The key of an existing backup, checked against the manifest's fingerprint.
    func key(for manifest: BackupManifest) throws(EngineError) -> EncryptionKey? {
        guard let encryption = manifest.encryption else { return nil }
        let key: EncryptionKey
        switch self {
        case .none:
            throw EngineError(.encryption, "backup \(manifest.id) is encrypted (\(encryption.kdf == nil ? "key file" : "passphrase")); pass \(encryption.kdf == nil ? "--encryption-key-file" : "--passphrase-file")")
        case .keyFile(let path):
            guard encryption.kdf == nil else {
                throw EngineError(.encryption, "backup \(manifest.id) was encrypted with a passphrase; pass --passphrase-file instead of --encryption-key-file")
            }
            do { key = try EncryptionKey(keyFileContents: read(path, option: "--encryption-key-file"), source: path) }
            catch { throw EngineError.wrapping(error) }
        case .passphraseFile(let path):
            guard let kdf = encryption.kdf else {
                throw EngineError(.encryption, "backup \(manifest.id) was encrypted with a key file; pass --encryption-key-file instead of --passphrase-file")
            }
            do { key = try EncryptionKey(passphrase: read(path, option: "--passphrase-file"), derivation: kdf) }
            catch { throw EngineError.wrapping(error) }
        }
        guard key.fingerprint == encryption.keyFingerprint else {
            throw EngineError(.encryption, "wrong key for backup \(manifest.id): its fingerprint is \(key.fingerprint), the backup was encrypted with \(encryption.keyFingerprint); pass the key used at backup time")
        }
        return key
    }

    private func read(_ path: String, option: String) throws(EngineError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EngineError(.invalidOption, "\(option) \(path) cannot be read; mount the Secret there or fix the path")
        }
        return [UInt8](data)
    }
}
