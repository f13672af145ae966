internal import BackstopAPI
internal import Pipeline
internal import Foundation

/// Where the encryption key comes from: a key file (32 raw bytes or base64, as a
/// Kubernetes Secret stores it) or a passphrase file stretched with scrypt.
public enum EncryptionSource: Sendable, Equatable {
    case none
    /// A key file; `option` names where its path came from (`--encryption-key-file` or its
    /// variable), for messages.
    case keyFile(String, option: String = "--encryption-key-file")
    case passphraseFile(String, option: String = "--passphrase-file")

    /// From `--encryption-key-file` and `--passphrase-file` (or their variables, which the
    /// options name); both at once is an error.
    public init(keyFile: (path: String, option: String)?, passphraseFile: (path: String, option: String)?) throws(EngineError) {
        switch (keyFile, passphraseFile) {
        case (nil, nil): self = .none
        case (let key?, nil): self = .keyFile(key.path, option: key.option)
        case (nil, let passphrase?): self = .passphraseFile(passphrase.path, option: passphrase.option)
        case (let key?, let passphrase?):
            throw EngineError(.invalidOption, "\(key.option) and \(passphrase.option) are exclusive; give one of them")
        }
    }

    /// Reads the file now, so a missing, empty or malformed one is reported before any work
    /// starts (the passphrase is stretched only when a backup needs it).
    public func check() throws(EngineError) {
        switch self {
        case .none:
            return
        case .keyFile(let path, let option):
            let contents = try read(path, option: option)
            do { _ = try EncryptionKey(keyFileContents: contents, source: "\(option) \(path)") }
            catch { throw EngineError(.invalidOption, error.message, underlying: error) }
        case .passphraseFile(let path, let option):
            let passphrase = try read(path, option: option)
            guard passphrase.contains(where: { $0 != 0x0A && $0 != 0x0D }) else {
                throw EngineError(.invalidOption, "\(option) \(path) is empty; put the passphrase in it")
            }
        }
    }

    /// A key for a new backup (a new scrypt salt for passphrases); `nil` when not encrypting.
    func keyForNewBackup() throws(EngineError) -> EncryptionKey? {
        switch self {
        case .none: return nil
        case .keyFile(let path, let option):
            let contents = try read(path, option: option)
            do { return try EncryptionKey(keyFileContents: contents, source: "\(option) \(path)") }
            catch { throw EngineError(.invalidOption, error.message, underlying: error) }
        case .passphraseFile(let path, let option):
            let passphrase = try read(path, option: option)
            do { return try EncryptionKey(passphrase: passphrase) }
            catch { throw EngineError(.invalidOption, "\(option) \(path): \(error.message)", underlying: error) }
        }
    }

    /// The key of an existing backup, checked against the manifest's fingerprint.
    func key(for manifest: BackupManifest) throws(EngineError) -> EncryptionKey? {
        try key(for: manifest.encryption, of: "backup \(manifest.id)")
    }

    /// The key of anything encrypted as `encryption` records (a backup, a WAL segment), checked
    /// against its fingerprint; `what` names it in messages.
    func key(for encryption: BackupManifest.EncryptionInfo?, of what: String) throws(EngineError) -> EncryptionKey? {
        guard let encryption else { return nil }
        let key: EncryptionKey
        switch self {
        case .none:
            throw EngineError(.encryption, "\(what) is encrypted (\(encryption.kdf == nil ? "key file" : "passphrase")); pass \(encryption.kdf == nil ? "--encryption-key-file" : "--passphrase-file")")
        case .keyFile(let path, let option):
            guard encryption.kdf == nil else {
                throw EngineError(.encryption, "\(what) was encrypted with a passphrase; pass --passphrase-file instead of \(option)")
            }
            let contents = try read(path, option: option)
            do { key = try EncryptionKey(keyFileContents: contents, source: "\(option) \(path)") }
            catch { throw EngineError(.invalidOption, error.message, underlying: error) }
            guard key.fingerprint == encryption.keyFingerprint else {
                throw EngineError(.encryption, "wrong key for \(what): \(option) \(path) has fingerprint \(key.fingerprint), it was encrypted with \(encryption.keyFingerprint); pass the key used at backup time")
            }
        case .passphraseFile(let path, let option):
            guard let kdf = encryption.kdf else {
                throw EngineError(.encryption, "\(what) was encrypted with a key file; pass --encryption-key-file instead of \(option)")
            }
            let passphrase = try read(path, option: option)
            do { key = try EncryptionKey(passphrase: passphrase, derivation: kdf) }
            catch { throw EngineError(.invalidOption, "\(option) \(path): \(error.message)", underlying: error) }
            guard key.fingerprint == encryption.keyFingerprint else {
                throw EngineError(.encryption, "wrong passphrase for \(what): the one in \(option) \(path) is not the passphrase it was encrypted with; pass the passphrase used at backup time")
            }
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
