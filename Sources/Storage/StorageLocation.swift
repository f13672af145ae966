internal import Foundation
internal import HTTP

/// Opens the storage a `--storage` URL names. Every refusal names the option as the user gave
/// it (a flag, or the variable a CronJob sets), so it can be fixed where it was written.
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
        /// How each option was given, for messages.
        public var origins = Origins()

        public init() {}
    }

    /// The names the options were given by: a flag such as `--s3-endpoint`, or a variable
    /// such as `BACKSTOP_S3_ENDPOINT`.
    public struct Origins: Sendable {
        public var storage = "--storage"
        public var endpoint = "--s3-endpoint"
        public var caFile = "--s3-ca-file"
        public var serverSideEncryption = "--s3-sse"
        public var kmsKeyID = "--s3-kms-key-id"
        public var credentialsDirectory = "--s3-credentials-dir"

        public init() {}
    }

    /// `file:///absolute/path` (a mounted volume) or `s3://bucket/prefix`.
    public static func open(_ url: String, s3: S3Settings = S3Settings(),
                            environment: [String: String] = [:]) throws(StorageError) -> any ObjectStorage {
        let option = s3.origins.storage
        if url.hasPrefix("file://") {
            let path = String(url.dropFirst("file://".count))
            guard path.hasPrefix("/") else {
                throw StorageError(.invalidLocation, key: nil,
                                   "\(option) \(url): a file URL needs an absolute path, like file:///var/backups")
            }
            do { return try FileStorage(root: path) }
            catch { throw StorageError(error.kind, key: nil, "\(option) \(url): \(error.message)") }
        }
        if url.hasPrefix("s3://") {
            return try openS3(url, settings: s3, environment: environment)
        }
        throw StorageError(.invalidLocation, key: nil,
                           "\(option) \(url): unknown scheme; use file:///path/to/folder or s3://bucket/folder")
    }

    private static func openS3(_ url: String, settings: S3Settings, environment: [String: String]) throws(StorageError) -> S3Storage {
        let origins = settings.origins
        let (bucket, prefix) = try S3Configuration.bucketAndPrefix(of: url, option: origins.storage)
        let region = settings.region ?? environment["AWS_REGION"].flatMap { $0.isEmpty ? nil : $0 }
            ?? environment["AWS_DEFAULT_REGION"].flatMap { $0.isEmpty ? nil : $0 } ?? "us-east-1"
        if let endpoint = settings.endpoint, !endpoint.hasPrefix("https://"), !endpoint.hasPrefix("http://") {
            throw StorageError(.invalidLocation, key: nil, "\(origins.endpoint) \(endpoint): give a URL, like https://minio.storage.svc:9000")
        }
        let encryption: S3Configuration.ServerSideEncryption?
        switch settings.serverSideEncryption {
        case nil:
            guard settings.kmsKeyID == nil else {
                throw StorageError(.invalidLocation, key: nil, "\(origins.kmsKeyID) needs \(origins.serverSideEncryption) aws:kms; set both, or leave the key out")
            }
            encryption = nil
        case "AES256": encryption = .aes256
        case "aws:kms": encryption = .kms(keyID: settings.kmsKeyID)
        case let other?:
            throw StorageError(.invalidLocation, key: nil, "\(origins.serverSideEncryption) \(other): use AES256 or aws:kms")
        }
        let http: HTTPClient
        do { http = try HTTPClient(configuration: .init(caFile: settings.caFile, userAgent: "backstop")) }
        catch { throw StorageError(.invalidLocation, key: nil, "\(origins.caFile): \(error.message)") }
        let credentials = try S3CredentialProvider.resolve(directory: settings.credentialsDirectory, environment: environment,
                                                           region: region, http: http)
        if let folder = settings.credentialsDirectory {
            // Read now: a missing or empty key is a mistake in how the Secret is mounted, better
            // reported before any work than at the first request.
            do { _ = try credentials.current() } catch {
                let detail = error.message.replacingOccurrences(of: "credentials folder \(folder): ", with: "")
                throw StorageError(.invalidLocation, key: nil, "\(origins.credentialsDirectory) \(folder): \(detail)")
            }
        }
        let configuration = S3Configuration(bucket: bucket, prefix: prefix, region: region, endpoint: settings.endpoint,
                                            pathStyle: settings.pathStyle, caFile: settings.caFile,
                                            serverSideEncryption: encryption, storageClass: settings.storageClass)
        return S3Storage(configuration: configuration, credentials: credentials, http: http)
    }
}
