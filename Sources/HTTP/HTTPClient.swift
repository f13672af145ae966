internal import CCurl
internal import CCurlShims
internal import BlockingCalls
internal import Foundation
internal import Synchronization
#if canImport(Glibc)
internal import Glibc
#endif

/// One libcurl-based client for every HTTP exchange of Backstop (S3 now, the Kubernetes API
/// later): whole request bodies (part buffers are passed without copying), bounded response
/// bodies, timeouts, TLS verification always on (with an optional CA bundle), and reuse of
/// connections through a pool of easy handles.
///
/// `perform` blocks in `curl_easy_perform`: call it from a dedicated thread, or use `send`,
/// which does that for you.
public final class HTTPClient: Sendable {
    public struct Configuration: Sendable {
        /// PEM bundle of extra trusted CAs (a private S3 endpoint, the cluster's CA); `nil` uses
        /// the system's.
        public var caFile: String?
        /// The same as PEM text (kubeconfig's `certificate-authority-data`).
        public var caPEM: String?
        /// Client certificate and key for mutual TLS, as files or PEM text.
        public var clientCertificate: Credential?
        public var clientKey: Credential?
        /// Skips verifying the server's certificate. Off unless a kubeconfig explicitly says
        /// `insecure-skip-tls-verify: true`; nothing in Backstop sets it otherwise.
        public var insecureSkipTLSVerify = false
        public var connectTimeout: Duration
        /// A transfer that moves no byte for this long is abandoned (a stalled connection).
        public var stallTimeout: Duration
        public var userAgent: String

        public init(caFile: String? = nil, connectTimeout: Duration = .seconds(10),
                    stallTimeout: Duration = .seconds(60), userAgent: String = "backstop") {
            self.caFile = caFile
            self.connectTimeout = connectTimeout
            self.stallTimeout = stallTimeout
            self.userAgent = userAgent
        }
    }

    /// A certificate or key: a path, or the PEM itself.
    public enum Credential: Sendable, Equatable {
        case file(String)
        case pem(String)
    }

    public let configuration: Configuration
    /// Idle easy handles. A handle keeps its connections open between requests, so taking one
    /// from here reuses a warm connection to the same host.
    private let idle = Mutex<[EasyHandle]>([])
    private static let maximumIdleHandles = 8
    /// The threads `send` blocks on; more concurrent sends than this wait their turn.
    private let threads: BlockingThreadPool

    private static let globalInitialization: CURLcode = backstop_curl_global_init()

    /// `maximumConcurrentRequests`: how many `send`s run at once (each holds a thread while
    /// its exchange lasts); S3 uploads keep four parts in flight, a controller one exchange
    /// per worker.
    public init(configuration: Configuration = Configuration(), maximumConcurrentRequests: Int = 8) throws(HTTPError) {
        guard Self.globalInitialization == CURLE_OK else {
            throw HTTPError(.invalidRequest, "libcurl failed to initialize (\(Self.globalInitialization.rawValue))")
        }
        if let caFile = configuration.caFile, access(caFile, R_OK) != 0 {
            throw HTTPError(.tls, "CA bundle \(caFile) cannot be read: \(String(cString: strerror(errno))); mount the CA certificate there or drop the option")
        }
        self.configuration = configuration
        self.threads = BlockingThreadPool(threads: maximumConcurrentRequests, name: "http")
    }

    /// Sends `request` from one of the client's threads, off the cooperative pool.
    public func send(_ request: HTTPRequest) async throws(HTTPError) -> HTTPResponse {
        do {
            return try await threads.run { [self] in try perform(request) }
        } catch let error as HTTPError {
            throw error
        } catch {
            throw HTTPError(.connection, "\(request.method) \(request.url): \(error)")
        }
    }

    /// Sends `request` and waits for the whole answer. Blocks the calling thread.
    ///
    /// With `receive`, a successful (2xx) answer's body is handed over as it arrives instead of
    /// collected (a watch stream); returning `false` ends the exchange early, which is not an
    /// error. Error answers are still collected, so their body can be read.
    public func perform(_ request: HTTPRequest,
                        receive: ((UnsafeRawBufferPointer) -> Bool)? = nil) throws(HTTPError) -> HTTPResponse {
        let handle = try checkOut()
        var reusable = true
        defer { if reusable { checkIn(handle) } }

        let transfer = Transfer(body: request.body, limit: request.maximumResponseBytes, receiver: receive)
        let context = Unmanaged.passRetained(transfer)
        defer { context.release() }

        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }
        for header in request.headers {
            // "Name;" is curl's way of sending a header with an empty value.
            headerList = curl_slist_append(headerList, header.value.isEmpty ? "\(header.name);" : "\(header.name): \(header.value)")
        }
        // No 100-continue round trip before each body: S3 answers errors after the body anyway.
        headerList = curl_slist_append(headerList, "Expect:")

        let curl = handle.raw
        curl_easy_reset(curl)
        var setup = CURLE_OK
        func set(_ result: CURLcode) { if setup == CURLE_OK { setup = result } }
        set(backstop_curl_setopt_string(curl, CURLOPT_URL, request.url))
        set(backstop_curl_setopt_string(curl, CURLOPT_CUSTOMREQUEST, request.method))
        set(backstop_curl_setopt_slist(curl, CURLOPT_HTTPHEADER, headerList))
        set(backstop_curl_setopt_long(curl, CURLOPT_NOSIGNAL, 1))
        set(backstop_curl_setopt_long(curl, CURLOPT_TCP_KEEPALIVE, 1))
        set(backstop_curl_setopt_long(curl, CURLOPT_CONNECTTIMEOUT_MS, Self.milliseconds(configuration.connectTimeout)))
        set(backstop_curl_setopt_long(curl, CURLOPT_LOW_SPEED_LIMIT, 1))
        set(backstop_curl_setopt_long(curl, CURLOPT_LOW_SPEED_TIME, max(1, Self.milliseconds(request.stallTimeout ?? configuration.stallTimeout) / 1000)))
        set(backstop_curl_setopt_string(curl, CURLOPT_USERAGENT, configuration.userAgent))
        set(backstop_curl_setopt_pointer(curl, CURLOPT_ERRORBUFFER, handle.errorBuffer))
        if let caFile = configuration.caFile {
            set(backstop_curl_setopt_string(curl, CURLOPT_CAINFO, caFile))
        }
        if let caPEM = configuration.caPEM {
            set(Array(caPEM.utf8).withUnsafeBytes { backstop_curl_setopt_blob(curl, CURLOPT_CAINFO_BLOB, $0.baseAddress, $0.count) })
        }
        switch configuration.clientCertificate {
        case .file(let path): set(backstop_curl_setopt_string(curl, CURLOPT_SSLCERT, path))
        case .pem(let text): set(Array(text.utf8).withUnsafeBytes { backstop_curl_setopt_blob(curl, CURLOPT_SSLCERT_BLOB, $0.baseAddress, $0.count) })
        case nil: break
        }
        switch configuration.clientKey {
        case .file(let path): set(backstop_curl_setopt_string(curl, CURLOPT_SSLKEY, path))
        case .pem(let text): set(Array(text.utf8).withUnsafeBytes { backstop_curl_setopt_blob(curl, CURLOPT_SSLKEY_BLOB, $0.baseAddress, $0.count) })
        case nil: break
        }
        if configuration.insecureSkipTLSVerify {
            set(backstop_curl_setopt_long(curl, CURLOPT_SSL_VERIFYPEER, 0))
            set(backstop_curl_setopt_long(curl, CURLOPT_SSL_VERIFYHOST, 0))
        }
        set(backstop_curl_setopt_data_callback(curl, CURLOPT_WRITEFUNCTION, Transfer.receiveBody))
        set(backstop_curl_setopt_pointer(curl, CURLOPT_WRITEDATA, context.toOpaque()))
        set(backstop_curl_setopt_data_callback(curl, CURLOPT_HEADERFUNCTION, Transfer.receiveHeader))
        set(backstop_curl_setopt_pointer(curl, CURLOPT_HEADERDATA, context.toOpaque()))
        if request.method == "HEAD" {
            set(backstop_curl_setopt_long(curl, CURLOPT_NOBODY, 1))
        } else if request.method == "PUT" || request.method == "POST" || !request.body.isEmpty {
            set(backstop_curl_setopt_long(curl, CURLOPT_UPLOAD, 1))
            set(backstop_curl_setopt_offset(curl, CURLOPT_INFILESIZE_LARGE, curl_off_t(request.body.count)))
            set(backstop_curl_setopt_data_callback(curl, CURLOPT_READFUNCTION, Transfer.sendBody))
            set(backstop_curl_setopt_pointer(curl, CURLOPT_READDATA, context.toOpaque()))
        }
        guard setup == CURLE_OK else {
            throw HTTPError(.invalidRequest, "\(request.redactedDescription): libcurl rejected an option: \(String(cString: curl_easy_strerror(setup)))")
        }

        handle.clearError()
        let code = curl_easy_perform(curl)
        guard code == CURLE_OK || (code == CURLE_WRITE_ERROR && transfer.stoppedByReceiver) else {
            // A failed handle may hold a half-used connection; let it go rather than reuse it.
            reusable = false
            throw Self.error(for: code, detail: handle.errorText, transfer: transfer, request: request)
        }
        var status = 0
        _ = backstop_curl_getinfo_long(curl, CURLINFO_RESPONSE_CODE, &status)
        return HTTPResponse(status: status, headers: transfer.headers, body: transfer.received)
    }

    private func checkOut() throws(HTTPError) -> EasyHandle {
        if let handle = idle.withLock({ $0.popLast() }) { return handle }
        guard let handle = EasyHandle() else {
            throw HTTPError(.invalidRequest, "libcurl could not create a handle (out of memory?)")
        }
        return handle
    }

    private func checkIn(_ handle: EasyHandle) {
        idle.withLock { handles in
            if handles.count < Self.maximumIdleHandles { handles.append(handle) }
        }
    }

    private static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }

    private static func error(for code: CURLcode, detail: String, transfer: Transfer, request: HTTPRequest) -> HTTPError {
        let what = "\(request.method) \(request.url.split(separator: "?", maxSplits: 1).first ?? "")"
        let reason = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
        if transfer.overflowed {
            return HTTPError(.body, "\(what): the answer is larger than \(request.maximumResponseBytes) bytes")
        }
        switch code {
        case CURLE_OPERATION_TIMEDOUT:
            return HTTPError(.timeout, "\(what): \(reason)")
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CACERT_BADFILE,
             CURLE_SSL_CERTPROBLEM, CURLE_SSL_ISSUER_ERROR:
            return HTTPError(.tls, "\(what): \(reason); if the endpoint uses a private CA, pass its certificate as the CA bundle")
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL, CURLE_BAD_FUNCTION_ARGUMENT:
            return HTTPError(.invalidRequest, "\(what): \(reason)")
        case CURLE_WRITE_ERROR, CURLE_READ_ERROR, CURLE_ABORTED_BY_CALLBACK:
            return HTTPError(.body, "\(what): \(reason)")
        case CURLE_COULDNT_RESOLVE_HOST:
            return HTTPError(.nameResolution, "\(what): \(reason)")
        default:
            return HTTPError(.connection, "\(what): \(reason)")
        }
    }
}

/// A libcurl easy handle and its error buffer. Used by one thread at a time: the client's
/// pool hands it out exclusively, which is what makes the unchecked `Sendable` sound.
private final class EasyHandle: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer
    let errorBuffer: UnsafeMutablePointer<CChar>

    init?() {
        guard let raw = curl_easy_init() else { return nil }
        self.raw = raw
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
    }

    func clearError() { errorBuffer[0] = 0 }

    var errorText: String { String(cString: errorBuffer) }

    deinit {
        curl_easy_cleanup(raw)
        errorBuffer.deallocate()
    }
}

/// The state of one exchange, reached from libcurl's callbacks through their context pointer.
private final class Transfer {
    let body: [UInt8]
    var sent = 0
    var received: [UInt8] = []
    let limit: Int
    var overflowed = false
    var headers: [String: String] = [:]
    /// From the last status line seen, so the body callback knows whether to stream.
    var status = 0
    let receiver: ((UnsafeRawBufferPointer) -> Bool)?
    var stoppedByReceiver = false

    init(body: [UInt8], limit: Int, receiver: ((UnsafeRawBufferPointer) -> Bool)?) {
        self.body = body
        self.limit = limit
        self.receiver = receiver
    }

    /// Every callback is registered together with the retained Transfer as its context.
    static func from(_ context: UnsafeMutableRawPointer?) -> Transfer? {
        context.map { Unmanaged<Transfer>.fromOpaque($0).takeUnretainedValue() }
    }

    static let sendBody: backstop_curl_data_callback = { buffer, size, count, context in
        guard let transfer = Transfer.from(context), let buffer else { return Int(CURL_READFUNC_ABORT) }
        let wanted = min(size * count, transfer.body.count - transfer.sent)
        guard wanted > 0 else { return 0 }
        transfer.body.withUnsafeBytes { bytes in
            UnsafeMutableRawBufferPointer(start: buffer, count: wanted)
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[transfer.sent..<(transfer.sent + wanted)]))
        }
        transfer.sent += wanted
        return wanted
    }

    static let receiveBody: backstop_curl_data_callback = { buffer, size, count, context in
        guard let transfer = Transfer.from(context) else { return 0 }
        let length = size * count
        if let receiver = transfer.receiver, (200..<300).contains(transfer.status) {
            guard let buffer, length > 0 else { return length }
            guard receiver(UnsafeRawBufferPointer(start: buffer, count: length)) else {
                transfer.stoppedByReceiver = true
                return 0  // ends the transfer; perform() treats this as a normal end
            }
            return length
        }
        guard transfer.received.count + length <= transfer.limit else {
            transfer.overflowed = true
            return 0  // anything but `length` makes libcurl stop with CURLE_WRITE_ERROR
        }
        if let buffer, length > 0 {
            transfer.received.append(contentsOf: UnsafeRawBufferPointer(start: buffer, count: length))
        }
        return length
    }

    static let receiveHeader: backstop_curl_data_callback = { buffer, size, count, context in
        let length = size * count
        guard let transfer = Transfer.from(context), let buffer else { return length }
        let line = String(decoding: UnsafeRawBufferPointer(start: buffer, count: length), as: UTF8.self)
        if line.hasPrefix("HTTP/") {
            // A new status line (after a 100 Continue, say): earlier headers were not the answer's.
            transfer.headers.removeAll()
            let fields = line.split(separator: " ")
            transfer.status = fields.count > 1 ? Int(fields[1]) ?? 0 : 0
        } else if let colon = line.firstIndex(of: ":") {
            let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
            transfer.headers[name] = value
            // Room for the whole body at once: growing by doubling would briefly hold two copies.
            if name == "content-length", let length = Int(value), length <= transfer.limit {
                transfer.received.reserveCapacity(length)
            }
        }
        return length
    }
}
