internal import Foundation
internal import HTTP

/// A streamed upload: a single PUT when the stream fits one part, otherwise a multipart upload
/// with up to `partsInFlight` parts sent at once from a fixed pool of reused buffers, so memory
/// stays at part size × (in flight + 1) however long the stream. Any failure aborts the
/// multipart upload, leaving no parts behind; and after every multipart write, completed or
/// not, uploads still pending for the key (from a retried CreateMultipartUpload whose first
/// answer was lost) are aborted too.
final class S3ObjectWriter: ObjectWriter {
    private let storage: S3Storage
    private let key: String
    private let fullKey: String
    private let parts: PartUploads
    private var current: [UInt8]
    private var uploadID: String?
    /// A CreateMultipartUpload was sent, so S3 may hold uploads of this key even if no id came back.
    private var multipartStarted = false
    private var partsStarted = 0
    private var total: Int64 = 0
    private var closed = false

    init(storage: S3Storage, key: String, fullKey: String) {
        self.storage = storage
        self.key = key
        self.fullKey = fullKey
        parts = PartUploads(buffers: storage.configuration.partsInFlight + 1)
        current = parts.takeBuffer(capacity: storage.configuration.partSize)
    }

    deinit { abort() }

    func write(_ bytes: UnsafeRawBufferPointer) throws(StorageError) {
        guard !closed else { throw StorageError(.io, key: key, "write after the upload of \(key) ended") }
        var offset = 0
        while offset < bytes.count {
            if let failure = parts.firstFailure { throw fail(failure) }
            let room = storage.configuration.partSize(forPart: partsStarted + 1) - current.count
            let taken = min(room, bytes.count - offset)
            current.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + taken)]))
            offset += taken
            total += Int64(taken)
            if current.count == storage.configuration.partSize(forPart: partsStarted + 1) {
                // Only a full part is sent while writing: the last one, which may be short,
                // waits for finish().
                do { try startPart() } catch { throw fail(error) }
            }
        }
    }

    func finish() throws(StorageError) -> ObjectInfo {
        guard !closed else { throw StorageError(.io, key: key, "the upload of \(key) already ended") }
        do {
            if uploadID == nil {
                let body = current
                _ = try storage.exchange("PUT", key: fullKey,
                                         headers: storage.creationHeaders() + [HTTPHeader("Content-MD5", Digests.md5(body).base64String)],
                                         body: body)
            } else {
                if !current.isEmpty { try startPart() }
                let etags = try parts.waitForAll()
                try complete(etags: etags)
                storage.abortStrayUploads(fullKey: fullKey)
            }
        } catch {
            throw fail(error)
        }
        closed = true
        return ObjectInfo(key: key, size: total)
    }

    func abort() {
        guard !closed else { return }
        closed = true
        parts.cancel()
        _ = try? parts.waitForAll()
        if let uploadID { try? storage.abortUpload(fullKey: fullKey, uploadID: uploadID) }
        if multipartStarted { storage.abortStrayUploads(fullKey: fullKey) }
    }

    private func fail(_ error: StorageError) -> StorageError {
        abort()
        return error
    }

    /// Hands the filled buffer to a part upload and takes an empty one (waiting for one to be
    /// returned when all are in flight: the backpressure that bounds memory).
    private func startPart() throws(StorageError) {
        let uploadID: String
        if let started = self.uploadID { uploadID = started } else { uploadID = try createUpload() }
        partsStarted += 1
        let number = partsStarted
        let body = PartBuffer(current)
        current = []
        let storage = storage
        let fullKey = fullKey
        let parts = parts
        parts.begin()
        Thread.detachNewThread {
            do throws(StorageError) {
                let response = try storage.exchange(
                    "PUT", key: fullKey, query: [("partNumber", "\(number)"), ("uploadId", uploadID)],
                    headers: [HTTPHeader("Content-MD5", Digests.md5(body.bytes).base64String)], body: body.bytes)
                guard let etag = response[header: "etag"] else {
                    throw StorageError(.io, key: fullKey, "part \(number) of \(fullKey): the answer has no ETag")
                }
                parts.end(part: number, etag: etag, returning: body.take())
            } catch {
                parts.end(part: number, failure: error, returning: body.take())
            }
        }
        current = parts.takeBuffer(capacity: storage.configuration.partSize(forPart: number + 1))
    }

    private func createUpload() throws(StorageError) -> String {
        multipartStarted = true
        let id = try storage.createMultipartUpload(fullKey: fullKey, key: key, headers: storage.creationHeaders())
        uploadID = id
        return id
    }

    private func complete(etags: [Int: String]) throws(StorageError) {
        guard let uploadID else { return }
        try storage.completeMultipartUpload(fullKey: fullKey, key: key, uploadID: uploadID,
                                            etags: etags.sorted { $0.key < $1.key }.map(\.value), expectedSize: total)
        self.uploadID = nil  // completed: nothing left to abort
    }
}

/// Part uploads in flight and the pool of buffers they return, shared between the writer's
/// thread and the part threads; guarded by `condition`.
private final class PartUploads: @unchecked Sendable {
    private let condition = NSCondition()
    private var free: [[UInt8]] = []
    private var allocated = 0
    private let limit: Int
    private var inFlight = 0
    private var etags: [Int: String] = [:]
    private var failure: StorageError?
    private var cancelled = false

    init(buffers: Int) { limit = buffers }

    var firstFailure: StorageError? {
        condition.lock()
        defer { condition.unlock() }
        return failure
    }

    /// An empty buffer with room for `capacity` bytes, reused when possible; waits while all
    /// `limit` are taken. Reserving up front keeps a filling part from growing by doubling.
    func takeBuffer(capacity: Int) -> [UInt8] {
        condition.lock()
        while free.isEmpty && allocated >= limit { condition.wait() }
        var buffer: [UInt8]
        if let reused = free.popLast() {
            buffer = reused
        } else {
            allocated += 1
            buffer = []
        }
        condition.unlock()
        buffer.removeAll(keepingCapacity: true)
        buffer.reserveCapacity(capacity)
        return buffer
    }

    func begin() {
        condition.lock()
        inFlight += 1
        condition.unlock()
    }

    func end(part: Int, etag: String? = nil, failure: StorageError? = nil, returning buffer: [UInt8]) {
        condition.lock()
        inFlight -= 1
        if let etag { etags[part] = etag }
        if let failure, self.failure == nil, !cancelled { self.failure = failure }
        free.append(buffer)
        condition.broadcast()
        condition.unlock()
    }

    func cancel() {
        condition.lock()
        cancelled = true
        condition.unlock()
    }

    /// Waits until no part is in flight; the ETags by part number, or the first failure.
    func waitForAll() throws(StorageError) -> [Int: String] {
        condition.lock()
        defer { condition.unlock() }
        while inFlight > 0 { condition.wait() }
        if let failure { throw failure }
        return etags
    }
}

/// Moves a part's buffer to its upload thread and back without leaving a second reference
/// behind, so the pool gets the same allocation back instead of a copy-on-write duplicate.
private final class PartBuffer: @unchecked Sendable {
    private(set) var bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func take() -> [UInt8] {
        defer { bytes = [] }
        return bytes
    }
}
