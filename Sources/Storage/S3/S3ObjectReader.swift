internal import HTTP

/// A streamed download in ranged GETs of one part size each. A dropped connection costs one
/// retried range, not the whole object; `If-Match` makes a reader fail instead of splicing two
/// versions when the object is replaced while it is read.
final class S3ObjectReader: ObjectReader {
    private let storage: S3Storage
    private let key: String
    private let fullKey: String
    private var position: Int64
    private var chunk: [UInt8] = []
    private var chunkOffset = 0

    private let end: Int64
    private let etag: String?

    /// Opens the object with a HEAD (blocking), so a missing key fails here, not at first read.
    init(storage: S3Storage, key: String, fullKey: String, range: Range<Int64>?) throws(StorageError) {
        self.storage = storage
        self.key = key
        self.fullKey = fullKey
        let response = try storage.exchange("HEAD", key: fullKey)
        guard let size = response[header: "content-length"].flatMap({ Int64($0) }) else {
            throw StorageError(.io, key: key, "HEAD \(key) in \(storage.displayName): the answer has no Content-Length")
        }
        etag = response[header: "etag"]
        position = range?.lowerBound ?? 0
        end = min(range?.upperBound ?? size, size)
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(StorageError) -> Int {
        if chunkOffset == chunk.count {
            try fetch()
            if chunk.isEmpty { return 0 }
        }
        let count = min(buffer.count, chunk.count - chunkOffset)
        chunk.withUnsafeBytes { bytes in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[chunkOffset..<(chunkOffset + count)]))
        }
        chunkOffset += count
        return count
    }

    func close() {
        chunk = []
        chunkOffset = 0
    }

    private func fetch() throws(StorageError) {
        chunk = []
        chunkOffset = 0
        guard position < end else { return }
        let last = min(end, position + Int64(storage.configuration.partSize)) - 1
        var headers = [HTTPHeader("Range", "bytes=\(position)-\(last)")]
        if let etag { headers.append(HTTPHeader("If-Match", etag)) }
        let response = try storage.exchange("GET", key: fullKey, headers: headers,
                                            maximumResponseBytes: storage.configuration.partSize)
        guard Int64(response.body.count) == last - position + 1 else {
            throw StorageError(.io, key: key, "GET \(key) bytes \(position)-\(last): \(response.body.count) bytes came back")
        }
        chunk = response.body
        position = last + 1
    }
}
