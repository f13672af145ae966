/// `manifest.json`: written last, it is the commit point of a backup (DESIGN §4).
/// A backup exists only when its manifest exists and its objects match it.
public struct BackupManifest: Codable, Equatable, Sendable {
    /// Bumped only for changes an older reader cannot understand.
    public static let currentFormatVersion = 1
    public static let fileName = "manifest.json"

    public var formatVersion: Int
    public var id: BackupID
    public var namespace: String
    public var policy: String
    public var environment: String
    public var toolVersion: String
    public var database: DatabaseInfo
    public var startedAt: UTCTimestamp
    public var completedAt: UTCTimestamp
    public var durationSeconds: Double
    public var dump: DumpInfo
    public var compression: CompressionInfo
    /// `nil` when the backup is not encrypted.
    public var encryption: EncryptionInfo?
    public var objects: [StoredObject]
    /// The pg_dump output before compression and encryption.
    public var plaintext: PlaintextInfo
    public var tables: [TableRowCount]
    /// SHA-256 (hex) of the previous manifest of the same environment, as stored; `nil` for the
    /// first backup. Deleting or editing a manifest breaks the chain visibly.
    public var previousManifestSHA256: String?
    /// Present exactly for a physical base backup (`dump.format` `basebackup-tar`).
    public var physical: PhysicalInfo?
    /// The Secrets and ConfigMaps stored beside the dump, when the policy asks for them. Not
    /// in `objects`: readers of the dump need not know of it, and an older reader ignores it.
    public var namespaceObjects: NamespaceObjectsInfo?

    public init(
        formatVersion: Int = BackupManifest.currentFormatVersion, id: BackupID, namespace: String,
        policy: String, environment: String, toolVersion: String, database: DatabaseInfo,
        startedAt: UTCTimestamp, completedAt: UTCTimestamp, durationSeconds: Double,
        dump: DumpInfo, compression: CompressionInfo, encryption: EncryptionInfo?,
        objects: [StoredObject], plaintext: PlaintextInfo, tables: [TableRowCount],
        previousManifestSHA256: String?, physical: PhysicalInfo? = nil, namespaceObjects: NamespaceObjectsInfo? = nil
    ) {
        self.formatVersion = formatVersion
        self.id = id
        self.namespace = namespace
        self.policy = policy
        self.environment = environment
        self.toolVersion = toolVersion
        self.database = database
        self.startedAt = startedAt
        self.completedAt = completedAt
        self.durationSeconds = durationSeconds
        self.dump = dump
        self.compression = compression
        self.encryption = encryption
        self.objects = objects
        self.plaintext = plaintext
        self.tables = tables
        self.previousManifestSHA256 = previousManifestSHA256
        self.physical = physical
        self.namespaceObjects = namespaceObjects
    }

    /// Stored size of all objects.
    public var storedBytes: Int64 { objects.reduce(0) { $0 + $1.size } + (namespaceObjects?.object.size ?? 0) }

    /// `objects.json.zst.enc`: a `v1` `List` of the selected objects (docs/format.md),
    /// compressed with the backup's algorithm and always encrypted with its key.
    public struct NamespaceObjectsInfo: Codable, Equatable, Sendable {
        public var object: StoredObject
        public var plaintext: PlaintextInfo
        /// How many of each kind (`Secret`, `ConfigMap`); names and values are inside only.
        public var counts: [String: Int]

        public init(object: StoredObject, plaintext: PlaintextInfo, counts: [String: Int]) {
            self.object = object
            self.plaintext = plaintext
            self.counts = counts
        }
    }

    public struct DatabaseInfo: Codable, Equatable, Sendable {
        public var name: String
        /// `server_version` as the server reports it, e.g. `15.18 (Debian 15.18-0+deb12u1)`.
        public var serverVersion: String
        /// `server_version_num`, e.g. 150018.
        public var serverVersionNumber: Int
        public var pgDumpVersion: String

        /// 17 for 170002; 9 for 90624 (9.6: before 10, a major had two parts, and the
        /// `postgres` images are tagged by the first).
        public var serverMajorVersion: Int { serverVersionNumber / 10_000 }

        public init(name: String, serverVersion: String, serverVersionNumber: Int, pgDumpVersion: String) {
            self.name = name
            self.serverVersion = serverVersion
            self.serverVersionNumber = serverVersionNumber
            self.pgDumpVersion = pgDumpVersion
        }
    }

    public struct DumpInfo: Codable, Equatable, Sendable {
        /// `custom` (pg_dump -Fc), or `basebackup-tar` (pg_basebackup -Ft, see `isPhysical`).
        public var format: String
        public init(format: String = "custom") { self.format = format }
    }

    public struct CompressionInfo: Codable, Equatable, Sendable {
        public var algorithm: CompressionAlgorithm
        public var level: Int
        public init(algorithm: CompressionAlgorithm, level: Int) {
            self.algorithm = algorithm
            self.level = level
        }
    }

    public struct EncryptionInfo: Codable, Equatable, Sendable {
        /// `AES-256-GCM-chunked-v1`, described in docs/format.md.
        public var algorithm: String
        public var chunkSize: Int
        /// Identifies the key without revealing it (docs/format.md).
        public var keyFingerprint: String
        /// How a passphrase became the key; `nil` for a key file.
        public var kdf: KeyDerivation?

        public init(algorithm: String, chunkSize: Int, keyFingerprint: String, kdf: KeyDerivation?) {
            self.algorithm = algorithm
            self.chunkSize = chunkSize
            self.keyFingerprint = keyFingerprint
            self.kdf = kdf
        }
    }

    public struct KeyDerivation: Codable, Equatable, Sendable {
        /// `scrypt`
        public var name: String
        /// Base64.
        public var salt: String
        public var n: UInt64
        public var r: UInt64
        public var p: UInt64

        public init(name: String, salt: String, n: UInt64, r: UInt64, p: UInt64) {
            self.name = name
            self.salt = salt
            self.n = n
            self.r = r
            self.p = p
        }
    }

    public struct StoredObject: Codable, Equatable, Sendable {
        /// File name inside the backup's folder, e.g. `data.dump.zst.enc`.
        public var name: String
        public var size: Int64
        public var sha256: String
        /// Every block but the last is exactly this long.
        public var blockSize: Int
        /// SHA-256 of each block, in order, so a reader stops at the first bad block.
        public var blockSHA256: [String]

        public init(name: String, size: Int64, sha256: String, blockSize: Int, blockSHA256: [String]) {
            self.name = name
            self.size = size
            self.sha256 = sha256
            self.blockSize = blockSize
            self.blockSHA256 = blockSHA256
        }
    }

    public struct PlaintextInfo: Codable, Equatable, Sendable {
        public var size: Int64
        public var sha256: String
        public init(size: Int64, sha256: String) {
            self.size = size
            self.sha256 = sha256
        }
    }

    public struct TableRowCount: Codable, Equatable, Sendable {
        public var schema: String
        public var name: String
        public var rows: Int64
        public init(schema: String, name: String, rows: Int64) {
            self.schema = schema
            self.name = name
            self.rows = rows
        }

        /// `"schema"."name"` for messages.
        public var qualifiedName: String { "\(schema).\(name)" }
    }
}
