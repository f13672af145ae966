public import HTTP

/// Opens the storage a `--storage` URL names.
public enum StorageLocation {
    /// The `--s3-*` options; ignored for `file://`.
    public struct S3Settings: Sendable {
        public var endpoint: String?
        public var region: String?
        public var pathStyle = false
        public var caFile: String?
        /// `AES256` or `aws:kms`.
        public var serverSideEncryption: String?
        public var kmsKeyID: String?
        public var storageClass: String?
        public var credentialsDirectory: String?

        public init() {}
    }

    /// `file:///absolute/path` (a mounted volume) or `s3://bucket/prefix`.
    public static func open(_ url: String, s3: S3Settings = S3Settings(),
                            environment: [String: String] = [:]) throws(StorageError) -> any ObjectStorage {
        if url.hasPrefix("file://") {
            let path = String(url.dropFirst("file://".count))
            guard path.hasPrefix("/") else {
                throw StorageError(.invalidLocation, key: nil,
                                   "--storage \(url): a file URL needs an absolute path, like file:///var/backups")
            }
            return try FileStorage(root: path)
        }
        if url.hasPrefix("s3://") {
            return try openS3(url, settings: s3, environment: environment)
        }
        throw StorageError(.invalidLocation, key: nil,
                           "--storage \(url): unknown scheme; use file:///path/to/folder or s3://bucket/folder")
    }

    private static func openS3(_ url: String, settings: S3Settings, environment: [String: String]) throws(StorageError) -> S3Storage {
        let (bucket, prefix) = try S3Configuration.bucketAndPrefix(of: url)
        let region = settings.region ?? environment["AWS_REGION"].flatMap { $0.isEmpty ? nil : $0 }
            ?? environment["AWS_DEFAULT_REGION"].flatMap { $0.isEmpty ? nil : $0 } ?? "us-east-1"
        if let endpoint = settings.endpoint, !endpoint.hasPrefix("https://"), !endpoint.hasPrefix("http://") {
            throw StorageError(.invalidLocation, key: nil, "--s3-endpoint \(endpoint): give a URL, like https://minio.storage.svc:9000")
        }
        let encryption: S3Configuration.ServerSideEncryption?
        switch settings.serverSideEncryption {
        case nil:
            guard settings.kmsKeyID == nil else {
                throw StorageError(.invalidLocation, key: nil, "--s3-kms-key-id needs --s3-sse aws:kms")
            }
            encryption = nil
        case "AES256": encryption = .aes256
        case "aws:kms": encryption = .kms(keyID: settings.kmsKeyID)
        case let other?:
            throw StorageError(.invalidLocation, key: nil, "--s3-sse \(other): use AES256 or aws:kms")
        }
        let http: HTTPClient
        do { http = try HTTPClient(configuration: .init(caFile: settings.caFile, userAgent: "backstop")) }
        catch { throw StorageError(.invalidLocation, key: nil, "--s3-ca-file: \(error.message)") }
        let credentials = try S3CredentialProvider.resolve(directory: settings.credentialsDirectory, environment: environment,
                                                           region: region, http: http)
        let configuration = S3Configuration(bucket: bucket, prefix: prefix, region: region, endpoint: settings.endpoint,
                                            pathStyle: settings.pathStyle, caFile: settings.caFile,
                                            serverSideEncryption: encryption, storageClass: settings.storageClass)
        return S3Storage(configuration: configuration, credentials: credentials, http: http)
    }
}
