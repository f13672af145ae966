/// One header line. Names compare case-insensitively, as HTTP says.
public struct HTTPHeader: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }

    /// Headers whose values are credentials: never printed.
    static let secretNames: Set<String> = ["authorization", "x-amz-security-token", "proxy-authorization", "cookie"]

    var isSecret: Bool { Self.secretNames.contains(name.lowercased()) }
}

public struct HTTPRequest: Sendable {
    public var method: String
    /// Absolute URL with the path and query already percent-encoded.
    public var url: String
    public var headers: [HTTPHeader]
    /// Sent as is; its array is not copied (callers reuse part buffers safely: Swift arrays
    /// are copy-on-write, and the request drops its reference when the exchange ends).
    public var body: [UInt8]
    /// The largest response body accepted; larger answers fail instead of filling memory.
    public var maximumResponseBytes: Int
    /// Overrides the client's stall timeout: a watch stays quiet for minutes on purpose.
    public var stallTimeout: Duration?

    public init(method: String, url: String, headers: [HTTPHeader] = [], body: [UInt8] = [],
                maximumResponseBytes: Int = 64 << 20, stallTimeout: Duration? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.maximumResponseBytes = maximumResponseBytes
        self.stallTimeout = stallTimeout
    }

    /// The request line and headers with credentials masked, and the query string dropped
    /// (presigned URLs carry signatures there): safe for logs and error messages.
    public var redactedDescription: String {
        let path = url.split(separator: "?", maxSplits: 1).first.map(String.init) ?? url
        let shown = headers.map { $0.isSecret ? "\($0.name): <redacted>" : "\($0.name): \($0.value)" }
        return ([("\(method) \(path)")] + shown).joined(separator: "; ")
    }
}

public struct HTTPResponse: Sendable {
    public let status: Int
    /// Lower-cased names; a repeated header keeps its last value.
    public let headers: [String: String]
    public let body: [UInt8]

    public init(status: Int, headers: [String: String], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public subscript(header name: String) -> String? { headers[name.lowercased()] }

    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}
