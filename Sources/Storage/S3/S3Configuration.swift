/// Where and how a bucket is reached: everything `--storage s3://…` and the `--s3-*` options say.
public struct S3Configuration: Sendable {
    public enum ServerSideEncryption: Sendable, Equatable {
        case aes256
        /// `aws:kms`, with the bucket's default key when `keyID` is `nil`.
        case kms(keyID: String?)
    }

    public var bucket: String
    /// Folder inside the bucket, without leading or trailing `/`; may be empty.
    public var prefix: String
    public var region: String
    /// `https://host[:port]` of an S3-compatible service; `nil` means AWS in `region`.
    public var endpoint: String?
    /// `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key`.
    public var pathStyle: Bool
    public var caFile: String?
    public var serverSideEncryption: ServerSideEncryption?
    public var storageClass: String?
    /// Size of upload parts until the stream passes `partSizeGrowthStart` parts.
    public var partSize: Int
    public var partsInFlight: Int
    /// Tries per request, the first included, for answers worth retrying.
    public var maximumAttempts: Int
    /// Objects larger than this change storage class by a multipart copy in parts of this
    /// size: S3's CopyObject takes at most 5 GiB.
    public var copyPartSize: Int = 5 << 30

    public static let defaultPartSize = 8 << 20
    /// S3 refuses parts under 5 MiB (but the last).
    public static let minimumPartSize = 5 << 20

    public init(bucket: String, prefix: String = "", region: String = "us-east-1", endpoint: String? = nil,
                pathStyle: Bool = false, caFile: String? = nil, serverSideEncryption: ServerSideEncryption? = nil,
                storageClass: String? = nil, partSize: Int = defaultPartSize, partsInFlight: Int = 4,
                maximumAttempts: Int = 6) {
        self.bucket = bucket
        self.prefix = prefix.split(separator: "/").joined(separator: "/")
        self.region = region
        self.endpoint = endpoint.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.pathStyle = pathStyle
        self.caFile = caFile
        self.serverSideEncryption = serverSideEncryption
        self.storageClass = storageClass
        self.partSize = partSize
        self.partsInFlight = partsInFlight
        self.maximumAttempts = maximumAttempts
    }

    /// Parses `s3://bucket/prefix`; `option` names where it came from in errors.
    public static func bucketAndPrefix(of url: String, option: String = "--storage") throws(StorageError) -> (bucket: String, prefix: String) {
        guard url.hasPrefix("s3://") else {
            throw StorageError(.invalidLocation, key: nil, "\(option) \(url): an S3 location looks like s3://bucket/folder")
        }
        let rest = url.dropFirst("s3://".count)
        let bucket = rest.prefix { $0 != "/" }
        guard !bucket.isEmpty else {
            throw StorageError(.invalidLocation, key: nil, "\(option) \(url): the bucket name is missing; write s3://bucket/folder")
        }
        guard bucket.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "-" || $0 == "." }), bucket.count >= 3, bucket.count <= 63 else {
            throw StorageError(.invalidLocation, key: nil, "\(option) \(url): \"\(bucket)\" is not a valid bucket name; use 3-63 lower-case letters, digits, '-' and '.'")
        }
        return (String(bucket), String(rest.dropFirst(bucket.count)))
    }

    /// The size of part `number` (1-based). 8 MiB parts take a stream to about 80 GB in 9,500
    /// parts; past that every ten parts double the size up to S3's 5 GiB, so the last 500 of
    /// S3's 10,000 parts hold about 2 TB more: no stream of unknown length runs out of parts.
    /// (Parts are buffered, so past 80 GB memory grows with them.)
    public func partSize(forPart number: Int) -> Int {
        guard number > Self.partSizeGrowthStart else { return partSize }
        let doublings = min((number - Self.partSizeGrowthStart - 1) / 10 + 1, 30)
        return min(partSize << doublings, Self.maximumPartSize)
    }

    static let partSizeGrowthStart = 9_500
    static let maximumPartSize = 5 << 30
}
