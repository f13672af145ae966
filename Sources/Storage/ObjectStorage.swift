public import Foundation

/// What Backstop needs from a place that keeps backups: whole small objects, streamed large
/// ones, listing by prefix and deletion. Every backend passes the same contract suite
/// (Tests/StorageTests/StorageContract.swift).
///
/// Keys are `/`-separated relative paths such as `ns/policy/env/backups/<id>/manifest.json`.
public protocol ObjectStorage: Sendable {
    /// Where the objects live, for messages, e.g. `file:///backups`. Carries no secret.
    var displayName: String { get }

    /// Stores a small object whole; it appears atomically.
    func put(_ key: String, bytes: [UInt8]) async throws(StorageError)

    /// Stores a small object only if no object has that key; `false` when one exists. Atomic:
    /// of two callers racing for the same key, exactly one gets `true` (leases rely on it).
    func putIfAbsent(_ key: String, bytes: [UInt8]) async throws(StorageError) -> Bool

    /// Reads a small object whole.
    func get(_ key: String) async throws(StorageError) -> [UInt8]

    /// Size of an object; `StorageError.Kind.notFound` if there is none.
    func head(_ key: String) async throws(StorageError) -> ObjectInfo

    /// Every object whose key starts with `prefix`, sorted by key.
    func list(prefix: String) async throws(StorageError) -> [ObjectInfo]

    /// Deletes the objects; keys that do not exist are not an error.
    func delete(_ keys: [String]) async throws(StorageError)

    /// Starts a streamed upload. The object appears only when the writer finishes.
    func makeWriter(_ key: String) throws(StorageError) -> any ObjectWriter

    /// Opens a streamed download of `range` (all of the object when `nil`); a missing object
    /// fails here. Blocks (it looks the object up): call it from the thread that will read.
    func makeReader(_ key: String, range: Range<Int64>?) throws(StorageError) -> any ObjectReader

    /// Uploads under `prefix` that began and never finished, because their writer was killed
    /// (SIGKILL, an OOM kill, a lost node) or an answer was lost: partial files, S3 multipart
    /// uploads neither completed nor aborted. `list` never shows them; they cost space (and
    /// on S3, money) until discarded. Sorted by key.
    func incompleteUploads(prefix: String) async throws(StorageError) -> [IncompleteUpload]

    /// Throws an unfinished upload away; one already gone is not an error.
    func discard(_ upload: IncompleteUpload) async throws(StorageError)
}

/// An upload that began and never finished (see `ObjectStorage.incompleteUploads`).
public struct IncompleteUpload: Equatable, Sendable {
    /// The key the object would have had.
    public var key: String
    /// Tells uploads of one key apart: the partial file's suffix, or S3's upload id.
    public var uploadID: String
    /// When it was last known to be active: a partial file's last write; an S3 upload's
    /// initiation, as the service reports it (moto reports a fixed date in 2010).
    public var lastActivity: Date

    public init(key: String, uploadID: String, lastActivity: Date) {
        self.key = key
        self.uploadID = uploadID
        self.lastActivity = lastActivity
    }
}

/// A streamed upload. Its methods block (disk or network I/O, and backpressure when the
/// consumer is slower): call them from a dedicated thread, never from the cooperative pool.
public protocol ObjectWriter: AnyObject {
    func write(_ bytes: UnsafeRawBufferPointer) throws(StorageError)
    /// Makes the object visible and durable; returns what was stored.
    func finish() throws(StorageError) -> ObjectInfo
    /// Discards everything written; the object never appears. Safe to call more than once.
    func abort()
}

/// A streamed download. `read` blocks; call it from a dedicated thread.
public protocol ObjectReader: AnyObject {
    /// Fills `buffer` with up to its size; returns 0 at the end of the object.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(StorageError) -> Int
    func close()
}

public struct ObjectInfo: Equatable, Sendable {
    public var key: String
    public var size: Int64
    /// The S3 storage class when it is not STANDARD; `nil` for STANDARD and for files.
    public var storageClass: String?

    public init(key: String, size: Int64, storageClass: String? = nil) {
        self.key = key
        self.size = size
        self.storageClass = storageClass
    }
}

/// Storage whose objects can change class in place (S3). Backends without classes (files)
/// do not adopt it, and tiering is a no-op for them.
public protocol TieredStorage: ObjectStorage {
    /// Rewrites the object in place with `storageClass`, keeping its bytes and encryption.
    func changeStorageClass(_ key: String, to storageClass: String) async throws(StorageError)
}

/// The one rule for keys, shared by every backend: relative, `/`-separated, no empty, `.` or
/// `..` segment (they would escape a folder on disk and mean something else in S3).
enum ObjectKey {
    static func validate(_ key: String) throws(StorageError) {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        guard !key.isEmpty, !key.hasPrefix("/"), !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
            throw StorageError(.invalidKey, key: key, "\"\(key)\" is not a valid object key (empty, absolute, or with . or .. segments)")
        }
    }
}
