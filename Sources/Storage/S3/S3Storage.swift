internal import BlockingCalls
internal import Foundation
public import HTTP
#if canImport(Glibc)
internal import Glibc
#endif

/// Objects in an S3 bucket (AWS or any S3-compatible service), under an optional prefix.
/// Every request is signed with SigV4, retried with backoff when the answer says it may work
/// later, and failed at once with S3's own error code otherwise.
public final class S3Storage: TieredStorage {
    public let configuration: S3Configuration
    public let http: HTTPClient
    public let credentials: S3CredentialProvider
    let signer: SigV4Signer

    public init(configuration: S3Configuration, credentials: S3CredentialProvider, http: HTTPClient) {
        self.configuration = configuration
        self.credentials = credentials
        self.http = http
        self.signer = SigV4Signer(region: configuration.region)
    }

    public var displayName: String {
        "s3://\(configuration.bucket)" + (configuration.prefix.isEmpty ? "" : "/\(configuration.prefix)")
    }

    // MARK: ObjectStorage

    public func put(_ key: String, bytes: [UInt8]) async throws(StorageError) {
        let full = try fullKey(key)
        try await blocking { [self] () throws(StorageError) in
            _ = try exchange("PUT", key: full, headers: creationHeaders() + [HTTPHeader("Content-MD5", Digests.md5(bytes).base64String)],
                             body: bytes)
        }
    }

    /// `If-None-Match: *` (S3 conditional writes): S3 answers 412 when the key exists, or 409
    /// when another conditional write to it is in flight; some S3-compatible servers refuse
    /// with another status. So a refusal is settled by reading the object: our own bytes mean
    /// an earlier attempt of this call succeeded and only its answer was lost (callers write
    /// content unique to them, like a lease naming its owner).
    public func putIfAbsent(_ key: String, bytes: [UInt8]) async throws(StorageError) -> Bool {
        let full = try fullKey(key)
        do {
            try await blocking { [self] () throws(StorageError) in
                _ = try exchange("PUT", key: full, headers: creationHeaders() + [
                    HTTPHeader("If-None-Match", "*"), HTTPHeader("Content-MD5", Digests.md5(bytes).base64String),
                ], body: bytes)
            }
            return true
        } catch {
            guard let existing = try? await get(key) else { throw error }
            return existing == bytes
        }
    }

    public func get(_ key: String) async throws(StorageError) -> [UInt8] {
        let full = try fullKey(key)
        return try await blocking { [self] () throws(StorageError) in
            try exchange("GET", key: full).body
        }
    }

    public func head(_ key: String) async throws(StorageError) -> ObjectInfo {
        let full = try fullKey(key)
        return try await blocking { [self] () throws(StorageError) in
            let response = try exchange("HEAD", key: full)
            guard let size = response[header: "content-length"].flatMap({ Int64($0) }) else {
                throw StorageError(.io, key: key, "HEAD \(key) in \(displayName): the answer has no Content-Length")
            }
            return ObjectInfo(key: key, size: size, storageClass: Self.nonStandard(response[header: "x-amz-storage-class"]))
        }
    }

    public func list(prefix: String) async throws(StorageError) -> [ObjectInfo] {
        let rootPrefix = rootPrefix
        return try await blocking { [self] () throws(StorageError) in
            var objects: [ObjectInfo] = []
            var token: String?
            repeat {
                var query = [("list-type", "2"), ("prefix", rootPrefix + prefix)]
                if let token { query.append(("continuation-token", token)) }
                let response = try exchange("GET", key: nil, query: query)
                guard let result = XMLElement.parse(response.body), result.name == "ListBucketResult" else {
                    throw StorageError(.io, key: nil, "listing \(displayName)/\(prefix): the answer is not a ListBucketResult")
                }
                for entry in result.children("Contents") {
                    guard let key = entry["Key"], key.hasPrefix(rootPrefix), let size = entry["Size"].flatMap({ Int64($0) }) else { continue }
                    objects.append(ObjectInfo(key: String(key.dropFirst(rootPrefix.count)), size: size,
                                              storageClass: Self.nonStandard(entry["StorageClass"])))
                }
                token = result["IsTruncated"] == "true" ? result["NextContinuationToken"] : nil
            } while token != nil
            // S3 lists in UTF-8 byte order already; sorting keeps the contract for every service.
            return objects.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        }
    }

    public func delete(_ keys: [String]) async throws(StorageError) {
        var full: [String] = []
        for key in keys { full.append(try fullKey(key)) }
        let batches = stride(from: 0, to: full.count, by: 1000).map { Array(full[$0..<min($0 + 1000, full.count)]) }
        try await blocking { [self] () throws(StorageError) in
            for batch in batches { try deleteBatch(batch) }
        }
    }

    public func makeWriter(_ key: String) throws(StorageError) -> any ObjectWriter {
        S3ObjectWriter(storage: self, key: key, fullKey: try fullKey(key))
    }

    public func makeReader(_ key: String, range: Range<Int64>?) throws(StorageError) -> any ObjectReader {
        try S3ObjectReader(storage: self, key: key, fullKey: try fullKey(key), range: range)
    }

    // MARK: Beyond the protocol

    /// Rewrites an object in place with another storage class: CopyObject up to
    /// `copyPartSize`, a multipart copy (UploadPartCopy) beyond. Encryption headers are sent
    /// again, since a copy does not inherit them.
    public func changeStorageClass(_ key: String, to storageClass: String) async throws(StorageError) {
        let full = try fullKey(key)
        let size = try await head(key).size
        try await blocking { [self] () throws(StorageError) in
            let source = HTTPHeader("x-amz-copy-source", "/\(configuration.bucket)/\(PercentEncoding.encode(full, keepingSlashes: true))")
            var headers = [HTTPHeader("x-amz-storage-class", storageClass)]
            if let encryption = configuration.serverSideEncryption { headers += Self.headers(for: encryption) }
            guard size > Int64(configuration.copyPartSize) else {
                let response = try exchange("PUT", key: full, headers: headers + [source, HTTPHeader("x-amz-metadata-directive", "COPY")])
                try throwIfErrorBody(response, method: "PUT (copy)", key: key)
                return
            }
            let uploadID: String
            do throws(StorageError) { uploadID = try createMultipartUpload(fullKey: full, key: key, headers: headers) } catch {
                abortStrayUploads(fullKey: full)
                throw error
            }
            do throws(StorageError) {
                var etags: [String] = []
                var offset: Int64 = 0
                while offset < size {
                    let last = min(size, offset + Int64(configuration.copyPartSize)) - 1
                    let response = try exchange("PUT", key: full, query: [("partNumber", "\(etags.count + 1)"), ("uploadId", uploadID)],
                                                headers: [source, HTTPHeader("x-amz-copy-source-range", "bytes=\(offset)-\(last)")])
                    try throwIfErrorBody(response, method: "PUT (copy)", key: key)
                    guard let etag = XMLElement.parse(response.body)?["ETag"] else {
                        throw StorageError(.io, key: key, "copying part \(etags.count + 1) of \(key): the answer has no ETag")
                    }
                    etags.append(etag)
                    offset = last + 1
                }
                try completeMultipartUpload(fullKey: full, key: key, uploadID: uploadID, etags: etags, expectedSize: size)
                abortStrayUploads(fullKey: full)
            } catch {
                try? abortUpload(fullKey: full, uploadID: uploadID)
                abortStrayUploads(fullKey: full)
                throw error
            }
        }
    }

    // MARK: Multipart uploads (streamed writes and large copies)

    /// Starts a multipart upload; its id.
    func createMultipartUpload(fullKey: String, key: String, headers: [HTTPHeader]) throws(StorageError) -> String {
        let response = try exchange("POST", key: fullKey, query: [("uploads", "")], headers: headers)
        guard let id = XMLElement.parse(response.body)?["UploadId"] else {
            throw StorageError(.io, key: key, "starting a multipart upload of \(key) in \(displayName): the answer has no UploadId")
        }
        return id
    }

    /// Completes an upload from its parts' ETags, in part order. AWS answers a repeated
    /// completion (a retry after a lost answer) as the first; some S3-compatible services
    /// (MinIO) answer NoSuchUpload. So NoSuchUpload is settled by looking: an object of the
    /// expected size means the first attempt completed it.
    func completeMultipartUpload(fullKey: String, key: String, uploadID: String, etags: [String], expectedSize: Int64) throws(StorageError) {
        let list = etags.enumerated().map { "<Part><PartNumber>\($0.offset + 1)</PartNumber><ETag>\(XMLText.escape($0.element))</ETag></Part>" }.joined()
        let body = Array("<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\(list)</CompleteMultipartUpload>".utf8)
        do {
            let response = try exchange("POST", key: fullKey, query: [("uploadId", uploadID)],
                                        headers: [HTTPHeader("Content-Type", "application/xml")], body: body)
            try throwIfErrorBody(response, method: "POST (complete)", key: key)
        } catch where error.kind == .notFound {
            let existing = try? exchange("HEAD", key: fullKey)
            guard existing?[header: "content-length"].flatMap({ Int64($0) }) == expectedSize else { throw error }
        }
    }

    /// Aborts an upload; one that is already gone (completed or aborted) is not an error.
    func abortUpload(fullKey: String, uploadID: String) throws(StorageError) {
        do {
            _ = try exchange("DELETE", key: fullKey, query: [("uploadId", uploadID)])
        } catch where error.kind == .notFound {
            return
        }
    }

    /// Copies and completions can fail after their 200 status line: the error is in the body.
    func throwIfErrorBody(_ response: HTTPResponse, method: String, key: String) throws(StorageError) {
        if let document = XMLElement.parse(response.body), document.name == "Error" {
            throw storageError(status: 200, document: document, method: method, key: key)
        }
    }

    /// STANDARD is what S3 means by no class; only other classes are worth reporting.
    static func nonStandard(_ storageClass: String?) -> String? {
        guard let storageClass, !storageClass.isEmpty, storageClass != "STANDARD" else { return nil }
        return storageClass
    }

    // MARK: Incomplete uploads

    /// Multipart uploads under `prefix` neither completed nor aborted (ListMultipartUploads,
    /// every page).
    public func incompleteUploads(prefix: String) async throws(StorageError) -> [IncompleteUpload] {
        let full = rootPrefix + prefix
        return try await blocking { [self] () throws(StorageError) in
            try pendingUploads(fullPrefix: full).map { upload in
                IncompleteUpload(key: String(upload.key.dropFirst(rootPrefix.count)), uploadID: upload.uploadID, lastActivity: upload.initiated)
            }
        }
    }

    public func discard(_ upload: IncompleteUpload) async throws(StorageError) {
        let full = try fullKey(upload.key)
        try await blocking { [self] () throws(StorageError) in
            try abortUpload(fullKey: full, uploadID: upload.uploadID)
        }
    }

    /// Aborts every upload still pending for exactly `fullKey`. A CreateMultipartUpload whose
    /// answer was lost after S3 acted is retried and starts a second upload; the first one's
    /// id is never learnt, so it is found by listing. Runs after every multipart write,
    /// successful or not (a completed upload is no longer pending). Best effort: what it
    /// misses, prune's sweep finds later.
    func abortStrayUploads(fullKey: String) {
        guard let pending = try? pendingUploads(fullPrefix: fullKey) else { return }
        for upload in pending where upload.key == fullKey {
            try? abortUpload(fullKey: fullKey, uploadID: upload.uploadID)
        }
    }

    private var rootPrefix: String { configuration.prefix.isEmpty ? "" : configuration.prefix + "/" }

    private func pendingUploads(fullPrefix: String) throws(StorageError) -> [(key: String, uploadID: String, initiated: Date)] {
        var uploads: [(key: String, uploadID: String, initiated: Date)] = []
        var markers: (key: String, uploadID: String)?
        repeat {
            var query = [("uploads", ""), ("prefix", fullPrefix)]
            if let markers { query += [("key-marker", markers.key), ("upload-id-marker", markers.uploadID)] }
            let response = try exchange("GET", key: nil, query: query)
            guard let result = XMLElement.parse(response.body), result.name == "ListMultipartUploadsResult" else {
                throw StorageError(.io, key: nil, "listing the unfinished uploads of \(displayName): the answer is not a ListMultipartUploadsResult")
            }
            for upload in result.children("Upload") {
                guard let key = upload["Key"], key.hasPrefix(rootPrefix), let id = upload["UploadId"] else { continue }
                uploads.append((key, id, upload["Initiated"].flatMap(Date.init(awsTimestamp:)) ?? .distantPast))
            }
            if result["IsTruncated"] == "true", let key = result["NextKeyMarker"], let id = result["NextUploadIdMarker"] {
                markers = (key, id)
            } else {
                markers = nil
            }
        } while markers != nil
        return uploads.sorted { ($0.key, $0.uploadID) < ($1.key, $1.uploadID) }
    }

    // MARK: Requests

    func fullKey(_ key: String) throws(StorageError) -> String {
        try ObjectKey.validate(key)
        return configuration.prefix.isEmpty ? key : configuration.prefix + "/" + key
    }

    /// Headers for anything that creates an object: encryption at rest and storage class.
    func creationHeaders() -> [HTTPHeader] {
        var headers: [HTTPHeader] = []
        if let encryption = configuration.serverSideEncryption { headers += Self.headers(for: encryption) }
        if let storageClass = configuration.storageClass { headers.append(HTTPHeader("x-amz-storage-class", storageClass)) }
        return headers
    }

    private static func headers(for encryption: S3Configuration.ServerSideEncryption) -> [HTTPHeader] {
        switch encryption {
        case .aes256:
            return [HTTPHeader("x-amz-server-side-encryption", "AES256")]
        case .kms(let keyID):
            return [HTTPHeader("x-amz-server-side-encryption", "aws:kms")]
                + (keyID.map { [HTTPHeader("x-amz-server-side-encryption-aws-kms-key-id", $0)] } ?? [])
        }
    }

    /// Sends one signed request and retries it while the failure is transient. Blocks.
    /// `key` is the full key in the bucket, or `nil` for a bucket-level request.
    func exchange(_ method: String, key: String?, query: [(String, String)] = [], headers: [HTTPHeader] = [],
                  body: [UInt8] = [], maximumResponseBytes: Int = 64 << 20) throws(StorageError) -> HTTPResponse {
        let target = address(of: key)
        let encodedQuery = query.map { (name: PercentEncoding.encode($0.0), value: PercentEncoding.encode($0.1)) }
        let url = target.base + target.path + (encodedQuery.isEmpty ? "" : "?" + encodedQuery.map { "\($0.name)=\($0.value)" }.joined(separator: "&"))
        let payloadHash = Digests.sha256(body).hexString
        let shownKey = key.map { configuration.prefix.isEmpty ? $0 : String($0.dropFirst(configuration.prefix.count + 1)) }
        let what = shownKey.map { "\(method) \($0) in \(displayName)" } ?? "\(method) on \(displayName)"
        var attempt = 0
        while true {
            attempt += 1
            let keys = try credentials.current()
            let unsigned = headers + [HTTPHeader("host", target.host)]
            let signature = signer.signatureHeaders(
                for: .init(method: method, path: target.path, query: encodedQuery, headers: unsigned, payloadHash: payloadHash),
                credentials: keys, at: Date())
            let request = HTTPRequest(method: method, url: url, headers: headers + signature, body: body,
                                      maximumResponseBytes: maximumResponseBytes)
            let failure: StorageError
            let retryable: Bool
            do {
                let response = try http.perform(request)
                if (200..<300).contains(response.status) { return response }
                let document = XMLElement.parse(response.body)
                failure = storageError(status: response.status, document: document, method: method, key: shownKey)
                retryable = Self.isRetryable(status: response.status, code: document?["Code"])
            } catch {
                failure = StorageError(.io, key: shownKey, "\(what): \(error.message)" + hint(for: error))
                retryable = error.isTransient
            }
            guard retryable, attempt < configuration.maximumAttempts else {
                if retryable {
                    throw StorageError(failure.kind, key: failure.key, failure.message + " (gave up after \(attempt) attempts)")
                }
                throw failure
            }
            Self.backOff(attempt: attempt)
        }
    }

    /// A bucket addressed by virtual host (`bucket.minio.example`) needs a DNS name most
    /// S3-compatible services do not have; path style avoids it.
    private func hint(for error: HTTPError) -> String {
        guard error.kind == .nameResolution, !configuration.pathStyle, configuration.endpoint != nil else { return "" }
        return "; \(address(of: nil).host) does not resolve: S3-compatible services (MinIO, Ceph) usually need --s3-path-style (BACKSTOP_S3_PATH_STYLE=true), which puts the bucket in the path"
    }

    static func isRetryable(status: Int, code: String?) -> Bool {
        [500, 502, 503, 504].contains(status) || ["SlowDown", "RequestTimeout", "InternalError", "RequestTimeTooSkewed"].contains(code ?? "")
    }

    /// 0.1–0.2 s, 0.2–0.4 s, 0.4–0.8 s … at most 10 s between attempts.
    static let retryBackoff = Backoff(base: .milliseconds(100), cap: .seconds(10))

    /// Waits before the next attempt, blocking: requests run on threads of their own.
    static func backOff(attempt: Int) {
        let delay = retryBackoff.delay(afterFailures: attempt - 1)
        usleep(useconds_t(delay / .microseconds(1)))
    }

    func storageError(status: Int, document: XMLElement?, method: String, key: String?) -> StorageError {
        let code = document?["Code"] ?? (status == 404 ? "NoSuchKey" : "HTTP \(status)")
        let message = document?["Message"].map { ": \($0)" } ?? ""
        let what = key.map { "\(method) \($0) in \(displayName)" } ?? "\(method) on \(displayName)"
        switch code {
        case "NoSuchKey":
            return StorageError(.notFound, key: key, "\(what): no such object")
        case "NoSuchUpload":
            return StorageError(.notFound, key: key, "\(what): NoSuchUpload\(message)")
        case "NoSuchBucket":
            return StorageError(.invalidLocation, key: key, "\(displayName): bucket \(configuration.bucket) does not exist (NoSuchBucket); create it or fix --storage")
        case "SignatureDoesNotMatch":
            return StorageError(.permissionDenied, key: key, "\(what): SignatureDoesNotMatch\(message); the secret access key does not belong to the access key id — check AWS_SECRET_ACCESS_KEY or the Secret it comes from")
        case "InvalidAccessKeyId":
            return StorageError(.permissionDenied, key: key, "\(what): InvalidAccessKeyId; the access key id is unknown to \(configuration.endpoint ?? "AWS")")
        case "AccessDenied", "HTTP 403":
            return StorageError(.permissionDenied, key: key, "\(what): AccessDenied\(message); the credentials lack s3 permissions on this bucket and prefix")
        case "PermanentRedirect", "AuthorizationHeaderMalformed":
            return StorageError(.invalidLocation, key: key, "\(what): \(code)\(message); the bucket is in another region — set --s3-region to it")
        default:
            return StorageError(.io, key: key, "\(what): \(code)\(message)")
        }
    }

    /// The URL base, path and Host of an object (or of the bucket when `key` is nil).
    func address(of key: String?) -> (base: String, path: String, host: String) {
        let endpoint = configuration.endpoint ?? "https://s3.\(configuration.region).amazonaws.com"
        let scheme = endpoint.hasPrefix("http://") ? "http://" : "https://"
        let authority = String(endpoint.dropFirst(endpoint.hasPrefix("http://") ? 7 : endpoint.hasPrefix("https://") ? 8 : 0))
        let objectPath = key.map { "/" + PercentEncoding.encode($0, keepingSlashes: true) } ?? "/"
        if configuration.pathStyle {
            return (scheme + authority, "/\(configuration.bucket)" + (key == nil ? "" : objectPath), authority)
        }
        let host = "\(configuration.bucket).\(authority)"
        return (scheme + host, objectPath, host)
    }

    private func deleteBatch(_ keys: [String]) throws(StorageError) {
        let objects = keys.map { "<Object><Key>\(XMLText.escape($0))</Key></Object>" }.joined()
        let body = Array("<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>\(objects)</Delete>".utf8)
        let response = try exchange("POST", key: nil, query: [("delete", "")],
                                    headers: [HTTPHeader("Content-MD5", Digests.md5(body).base64String),
                                              HTTPHeader("Content-Type", "application/xml")], body: body)
        if let failed = XMLElement.parse(response.body)?.children("Error").first {
            throw StorageError(.io, key: failed["Key"], "deleting \(failed["Key"] ?? "") in \(displayName): \(failed["Code"] ?? "") \(failed["Message"] ?? "")")
        }
    }

    private func blocking<T: Sendable>(_ body: @escaping @Sendable () throws(StorageError) -> T) async throws(StorageError) -> T {
        do {
            return try await runBlocking(name: "s3") { try body() }
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError(.io, key: nil, "\(displayName): \(error)")
        }
    }
}
