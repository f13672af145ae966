public import HTTP
public import Foundation
internal import Synchronization
#if canImport(Glibc)
internal import Glibc
#endif

/// Access keys for S3 (and STS). `description` never shows the secret or the token.
public struct S3Credentials: Sendable, Equatable, CustomStringConvertible {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?
    /// When temporary credentials stop working; `nil` for long-lived keys.
    public var expiration: Date?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, expiration: Date? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.expiration = expiration
    }

    public var description: String { "access key \(accessKeyID)" + (sessionToken == nil ? "" : " (temporary)") }
}

/// AWS Signature Version 4 (header-based): canonical request → string to sign → HMAC chain.
///
/// Every request carries `x-amz-content-sha256`. Backstop always knows its payloads up front
/// (parts are buffered before they are sent), so it sends their real SHA-256 and S3 rejects a
/// body damaged on the way; `UNSIGNED-PAYLOAD` is supported for callers that stream a body of
/// unknown hash, but nothing in Backstop uses it.
public struct SigV4Signer: Sendable {
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"
    public static let emptyPayloadHash = Digests.sha256([UInt8]()).hexString

    public let region: String
    public let service: String
    /// The signing key depends only on the secret, the day, the region and the service: it is
    /// derived once per day instead of four HMACs per request.
    private let keyCache = SigningKeyCache()

    public init(region: String, service: String = "s3") {
        self.region = region
        self.service = service
    }

    /// What the canonical request is made of. `path` and the query are already percent-encoded
    /// the way they go on the wire (`PercentEncoding.encode`).
    public struct Request: Sendable {
        public var method: String
        public var path: String
        public var query: [(name: String, value: String)]
        /// Must include `host`. Every header given is signed.
        public var headers: [HTTPHeader]
        /// Hex SHA-256 of the body, or `unsignedPayload`.
        public var payloadHash: String

        public init(method: String, path: String, query: [(name: String, value: String)], headers: [HTTPHeader], payloadHash: String) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
            self.payloadHash = payloadHash
        }
    }

    /// The headers to add to `request`: `x-amz-date`, `x-amz-content-sha256`, the session token
    /// when there is one, and `Authorization`.
    public func signatureHeaders(for request: Request, credentials: S3Credentials, at date: Date) -> [HTTPHeader] {
        let timestamp = Self.timestamp(date)
        var added = [HTTPHeader("x-amz-date", timestamp), HTTPHeader("x-amz-content-sha256", request.payloadHash)]
        if let token = credentials.sessionToken { added.append(HTTPHeader("x-amz-security-token", token)) }
        var signed = request
        signed.headers += added
        let parts = canonicalParts(of: signed)
        let day = String(timestamp.prefix(8))
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = ["AWS4-HMAC-SHA256", timestamp, scope, Digests.sha256(Array(parts.request.utf8)).hexString]
            .joined(separator: "\n")
        let key = keyCache.key(secret: credentials.secretAccessKey, day: day, region: region, service: service)
        let signature = Digests.hmacSHA256(key: key, Array(stringToSign.utf8)).hexString
        added.append(HTTPHeader("Authorization",
                                "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(parts.signedHeaders), Signature=\(signature)"))
        return added
    }

    /// The canonical request and the signed-header list (exposed to tests).
    func canonicalParts(of request: Request) -> (request: String, signedHeaders: String) {
        var merged: [String: [String]] = [:]
        for header in request.headers {
            // Values are trimmed and inner runs of whitespace collapse to one space.
            let value = header.value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" })
                .joined(separator: " ")
            merged[header.name.lowercased(), default: []].append(value)
        }
        let names = merged.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\((merged[$0] ?? []).joined(separator: ","))\n" }.joined()
        let signedHeaders = names.joined(separator: ";")
        let query = request.query
            .sorted { $0.name == $1.name ? $0.value < $1.value : $0.name < $1.name }
            .map { "\($0.name)=\($0.value)" }
            .joined(separator: "&")
        let canonical = [request.method, request.path.isEmpty ? "/" : request.path, query, canonicalHeaders,
                         signedHeaders, request.payloadHash].joined(separator: "\n")
        return (canonical, signedHeaders)
    }

    /// `20261122T010203Z`, the basic ISO 8601 form SigV4 wants, always in UTC.
    static func timestamp(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                      parts.tm_hour, parts.tm_min, parts.tm_sec)
    }
}

private final class SigningKeyCache: Sendable {
    private struct Entry {
        let scope: String
        let secretHash: [UInt8]
        let key: [UInt8]
    }
    private let entry = Mutex<Entry?>(nil)

    func key(secret: String, day: String, region: String, service: String) -> [UInt8] {
        let scope = "\(day)/\(region)/\(service)"
        // The secret is compared through its hash so the cache never holds it in the clear twice.
        let secretHash = Digests.sha256(Array(secret.utf8))
        if let cached = entry.withLock({ $0 }), cached.scope == scope, cached.secretHash == secretHash {
            return cached.key
        }
        var key = Array("AWS4\(secret)".utf8)
        for part in [day, region, service, "aws4_request"] {
            key = Digests.hmacSHA256(key: key, Array(part.utf8))
        }
        entry.withLock { $0 = Entry(scope: scope, secretHash: secretHash, key: key) }
        return key
    }
}
