import Foundation
import HTTP
@testable import Storage
import TestSupport
import Testing
import BlockingCalls

/// The moto server that hack/test.sh starts (hack/moto.sh), reached like any S3 endpoint.
enum S3TestEnvironment {
    static let environment = ProcessInfo.processInfo.environment
    static let integrationEnabled = environment["BACKSTOP_SKIP_INTEGRATION"] != "1"

    static func endpoint() throws -> String {
        guard let endpoint = environment["BACKSTOP_TEST_S3_ENDPOINT"] else {
            throw MissingService(description: "no S3 server: run hack/test.sh, or set BACKSTOP_SKIP_INTEGRATION=1 to skip integration tests on purpose")
        }
        return endpoint
    }

    /// A storage on a new, empty bucket (and an optional prefix inside it).
    static func makeStorage(prefix: String = "", partSize: Int = S3Configuration.minimumPartSize,
                            credentials: S3Credentials? = nil, endpoint: String? = nil) async throws -> S3Storage {
        let bucket = "backstop-\(UUID().uuidString.lowercased().prefix(18))"
        let http = try HTTPClient()
        let credentials = credentials ?? S3Credentials(accessKeyID: environment["AWS_ACCESS_KEY_ID"] ?? "AKIABACKSTOPTEST0001",
                                                       secretAccessKey: environment["AWS_SECRET_ACCESS_KEY"] ?? "secret")
        let storage = S3Storage(
            configuration: S3Configuration(bucket: bucket, prefix: prefix, region: "us-east-1",
                                           endpoint: try endpoint ?? self.endpoint(), pathStyle: true,
                                           partSize: partSize, maximumAttempts: 3),
            credentials: S3CredentialProvider(source: .fixed(credentials), http: http), http: http)
        try await runBucketRequest(storage, "PUT")
        return storage
    }

    static func runBucketRequest(_ storage: S3Storage, _ method: String) async throws {
        _ = try await runBlocking(name: "test") { try storage.exchange(method, key: nil) }
    }
}

struct MissingService: Error, CustomStringConvertible {
    let description: String
}

@Suite("S3Storage against moto", .enabled(if: S3TestEnvironment.integrationEnabled))
struct S3StorageTests {
    @Test func passesTheContract() async throws {
        let storage = try await S3TestEnvironment.makeStorage()
        // moto checks If-None-Match but not atomically: two racing creators can both win there.
        try await StorageContract.check(storage, atomicCreate: false)
        #expect(try await storage.incompleteUploads(prefix: "").isEmpty, "no multipart upload left behind")
    }

    @Test func passesTheContractUnderAPrefix() async throws {
        let storage = try await S3TestEnvironment.makeStorage(prefix: "clusters/eu-1")
        try await StorageContract.check(storage, atomicCreate: false)
        #expect(storage.displayName == "s3://\(storage.configuration.bucket)/clusters/eu-1")
    }

    @Test("a long stream goes up in parallel parts and comes back identical")
    func multipart() async throws {
        let storage = try await S3TestEnvironment.makeStorage()
        var generator = SeededRandom(seed: 42)
        let data = generator.bytes(23 << 20)
        try await runBlocking(name: "test") {
            let writer = try storage.makeWriter("big/object.bin")
            var offset = 0
            while offset < data.count {
                let end = min(data.count, offset + 1_000_003)
                try data[offset..<end].withUnsafeBytes { try writer.write($0) }
                offset = end
            }
            #expect(try writer.finish() == ObjectInfo(key: "big/object.bin", size: Int64(data.count)))
        }
        #expect(try await storage.head("big/object.bin").size == Int64(data.count))
        let back = try await runBlocking(name: "test") { try StorageContract.readAll(storage.makeReader("big/object.bin", range: nil)) }
        #expect(back == data)
        #expect(try await storage.incompleteUploads(prefix: "").isEmpty)
    }

    @Test("an aborted multipart upload leaves no parts behind")
    func abortedMultipart() async throws {
        let storage = try await S3TestEnvironment.makeStorage()
        try await runBlocking(name: "test") {
            let writer = try storage.makeWriter("aborted.bin")
            let chunk = [UInt8](repeating: 7, count: 12 << 20)
            try chunk.withUnsafeBytes { try writer.write($0) }
            writer.abort()
        }
        #expect(try await storage.incompleteUploads(prefix: "").isEmpty)
        await #expect(throws: StorageError.self) { try await storage.head("aborted.bin") }
    }

    @Test("an unknown bucket is NoSuchBucket, not an empty listing")
    func unknownBucket() async throws {
        let storage = try await S3TestEnvironment.makeStorage()
        let missing = S3Storage(
            configuration: S3Configuration(bucket: storage.configuration.bucket + "-missing", endpoint: storage.configuration.endpoint,
                                           pathStyle: true, maximumAttempts: 1),
            credentials: storage.credentials, http: storage.http)
        do {
            _ = try await missing.list(prefix: "")
            Issue.record("listing a missing bucket succeeded")
        } catch {
            #expect(error.kind == .invalidLocation)
            #expect(error.message.contains("NoSuchBucket"))
        }
    }

    @Test("keys with spaces, plus signs and unicode survive the round trip")
    func awkwardKeys() async throws {
        let storage = try await S3TestEnvironment.makeStorage()
        let keys = ["a b/c+d.json", "ünï/日本/🙂.bin", "q?x=1&y=2#z", "percent%20sign"]
        for (index, key) in keys.enumerated() { try await storage.put(key, bytes: [UInt8(index)]) }
        #expect(try await storage.list(prefix: "").map(\.key).sorted() == keys.sorted())
        for (index, key) in keys.enumerated() { #expect(try await storage.get(key) == [UInt8(index)]) }
        try await storage.delete(keys)
        #expect(try await storage.list(prefix: "").isEmpty)
    }

    @Test("more than one page of listing")
    func pagedListing() async throws {
        let storage = try await S3TestEnvironment.makeStorage()
        // S3 pages at 1,000 keys.
        let keys = (0..<1_005).map { String(format: "k/%05d", $0) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for slice in stride(from: 0, to: keys.count, by: 100) {
                group.addTask { for key in keys[slice..<min(slice + 100, keys.count)] { try await storage.put(key, bytes: []) } }
            }
            try await group.waitForAll()
        }
        #expect(try await storage.list(prefix: "k/").map(\.key) == keys)
        try await storage.delete(keys)
        #expect(try await storage.list(prefix: "k/").isEmpty)
    }

    @Test("interop: the aws CLI reads what S3Storage wrote, and the other way round")
    func awsCLIInterop() async throws {
        let storage = try await S3TestEnvironment.makeStorage()
        var generator = SeededRandom(seed: 7)
        let data = generator.bytes(11 << 20 + 5)
        _ = try await runBlocking(name: "test") {
            let writer = try storage.makeWriter("from-backstop.bin")
            try data.withUnsafeBytes { try writer.write($0) }
            return try writer.finish()
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("backstop-aws-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let bucket = storage.configuration.bucket
        try await aws(["s3", "cp", "s3://\(bucket)/from-backstop.bin", folder.appendingPathComponent("down.bin").path], endpoint: storage.configuration.endpoint!)
        #expect(try Data(contentsOf: folder.appendingPathComponent("down.bin")) == Data(data))

        try Data(data.reversed()).write(to: folder.appendingPathComponent("up.bin"))
        try await aws(["s3", "cp", folder.appendingPathComponent("up.bin").path, "s3://\(bucket)/from-cli.bin"], endpoint: storage.configuration.endpoint!)
        let back = try await runBlocking(name: "test") { try StorageContract.readAll(storage.makeReader("from-cli.bin", range: nil)) }
        #expect(back == Array(data.reversed()))
    }

    /// moto checks signatures only in this mode, and then wrongly rejects some correct ones
    /// (DESIGN §5), so it sees plain keys only; botocore is the signer's oracle for the rest.
    @Test("a signature-checking server accepts our requests and rejects a wrong secret")
    func checkedSignatures() async throws {
        let environment = S3TestEnvironment.environment
        let endpoint = try #require(environment["BACKSTOP_TEST_S3_AUTH_ENDPOINT"], "no signature-checking moto: run hack/test.sh")
        let good = S3Credentials(accessKeyID: try #require(environment["BACKSTOP_TEST_S3_AUTH_ACCESS_KEY_ID"]),
                                 secretAccessKey: try #require(environment["BACKSTOP_TEST_S3_AUTH_SECRET_ACCESS_KEY"]))
        let storage = try await S3TestEnvironment.makeStorage(credentials: good, endpoint: endpoint)
        try await storage.put("plain-key.json", bytes: Array("{\"a\":1}".utf8))
        #expect(try await storage.get("plain-key.json") == Array("{\"a\":1}".utf8))
        #expect(try await storage.head("plain-key.json").size == 7)
        try await storage.delete(["plain-key.json"])
        await #expect(throws: StorageError.self) { try await storage.head("plain-key.json") }

        var wrong = good
        wrong.secretAccessKey += "x"
        let forged = S3Storage(configuration: storage.configuration,
                               credentials: S3CredentialProvider(source: .fixed(wrong), http: storage.http), http: storage.http)
        do {
            try await forged.put("plain-key.json", bytes: [1])
            Issue.record("a request signed with the wrong secret was accepted")
        } catch {
            #expect(error.kind == .permissionDenied)
            #expect(error.message.contains("SignatureDoesNotMatch"))
            #expect(error.message.contains("AWS_SECRET_ACCESS_KEY"), "the hint names what to fix")
            #expect(!error.message.contains(wrong.secretAccessKey), "never the secret itself")
        }
    }

    @Test("TLS: a private CA is trusted only when its bundle is given")
    func privateCA() async throws {
        let environment = S3TestEnvironment.environment
        let endpoint = try #require(environment["BACKSTOP_TEST_S3_TLS_ENDPOINT"], "no TLS moto: run hack/test.sh")
        let ca = try #require(environment["BACKSTOP_TEST_S3_TLS_CA"])
        var settings = StorageLocation.S3Settings()
        settings.endpoint = endpoint
        settings.pathStyle = true
        let bucket = "tls-\(UUID().uuidString.lowercased().prefix(12))"

        let untrusted = try StorageLocation.open("s3://\(bucket)", s3: settings, environment: environment)
        do {
            _ = try await untrusted.list(prefix: "")
            Issue.record("a certificate from an unknown CA was accepted")
        } catch {
            #expect(error.message.contains("CA bundle"), "the error says how to trust a private CA: \(error.message)")
        }

        settings.caFile = ca
        let trusted = try #require(try StorageLocation.open("s3://\(bucket)", s3: settings, environment: environment) as? S3Storage)
        _ = try await runBlocking(name: "test") { try trusted.exchange("PUT", key: nil) }
        try await trusted.put("over-tls", bytes: [1, 2, 3])
        #expect(try await trusted.get("over-tls") == [1, 2, 3])

        settings.caFile = "/nonexistent/ca.pem"
        #expect(throws: StorageError.self) { try StorageLocation.open("s3://\(bucket)", s3: settings, environment: environment) }
    }

    @Test("the contract holds through 503s, resets and delays (retried, parts re-sent)")
    func throughFaults() async throws {
        let direct = try await S3TestEnvironment.makeStorage()
        let proxy = try FaultProxy(upstream: direct.configuration.endpoint!, faultRate: 0.3, seed: 11)
        defer { proxy.stop() }
        var configuration = direct.configuration
        configuration.endpoint = proxy.endpoint
        configuration.maximumAttempts = 10
        let faulty = S3Storage(configuration: configuration, credentials: direct.credentials, http: direct.http)
        try await StorageContract.check(faulty, atomicCreate: false)

        // Multipart uploads until every kind of fault has hit at least once.
        var generator = SeededRandom(seed: 5)
        let data = generator.bytes(17 << 20)
        for round in 0..<8 where round == 0 || proxy.counts.injected.count < FaultProxy.Fault.allCases.count {
            _ = try await runBlocking(name: "test") {
                let writer = try faulty.makeWriter("faults/big-\(round).bin")
                try data.withUnsafeBytes { try writer.write($0) }
                return try writer.finish()
            }
            let back = try await runBlocking(name: "test") { try StorageContract.readAll(direct.makeReader("faults/big-\(round).bin", range: nil)) }
            #expect(back == data)
        }
        #expect(try await direct.incompleteUploads(prefix: "").isEmpty)
        let counts = proxy.counts
        #expect(counts.totalInjected >= 10 && counts.injected.count == FaultProxy.Fault.allCases.count, "\(counts)")
    }

    /// S3 acts on a request whose answer never arrives; the retry then meets what the first
    /// attempt did. A retried CreateMultipartUpload starts a second upload (the first one's id
    /// is never learnt); a retried completion finds its upload completed.
    @Test("answers lost after S3 acted: no upload is left pending, the object is whole", arguments: ["?uploads= ", "?uploadId="])
    func lostAnswers(_ request: String) async throws {
        let direct = try await S3TestEnvironment.makeStorage()
        let proxy = try FaultProxy(upstream: direct.configuration.endpoint!, faultRate: 0, seed: 1)
        defer { proxy.stop() }
        proxy.inject(.loseAnswer, times: 2) { $0.hasPrefix("POST ") && $0.contains(request) }
        var configuration = direct.configuration
        configuration.endpoint = proxy.endpoint
        let faulty = S3Storage(configuration: configuration, credentials: direct.credentials, http: direct.http)
        var generator = SeededRandom(seed: 4)
        let data = generator.bytes(11 << 20)
        _ = try await runBlocking(name: "test") {
            let writer = try faulty.makeWriter("lost/object.bin")
            try data.withUnsafeBytes { try writer.write($0) }
            return try writer.finish()
        }
        #expect(proxy.counts.lostAnswers.count == 2, "the planned faults happened: \(proxy.counts.lostAnswers)")
        #expect(try await direct.incompleteUploads(prefix: "").isEmpty, "no upload left pending")
        #expect(try await runBlocking(name: "test") { try StorageContract.readAll(direct.makeReader("lost/object.bin", range: nil)) } == data)

        // A write that fails after its CreateMultipartUpload answers were lost leaves none either.
        proxy.inject(.loseAnswer, times: 10) { $0.hasPrefix("POST ") && $0.contains("?uploads= ") }
        var few = configuration
        few.maximumAttempts = 2
        let failing = S3Storage(configuration: few, credentials: direct.credentials, http: direct.http)
        await #expect(throws: StorageError.self) {
            try await runBlocking(name: "test") {
                let writer = try failing.makeWriter("lost/failed.bin")
                try data.withUnsafeBytes { try writer.write($0) }
                _ = try writer.finish()
            }
        }
        #expect(try await direct.incompleteUploads(prefix: "").isEmpty, "the uploads S3 started are aborted")
    }

    @Test("storage class changes in place: CopyObject, and a multipart copy past copyPartSize; bytes stay identical")
    func storageClassChange() async throws {
        let base = try await S3TestEnvironment.makeStorage()
        var configuration = base.configuration
        configuration.copyPartSize = 5 << 20  // S3's real limit is 5 GiB; small here so the multipart path runs
        configuration.serverSideEncryption = .aes256
        let storage = S3Storage(configuration: configuration, credentials: base.credentials, http: base.http)
        var generator = SeededRandom(seed: 9)
        let big = generator.bytes(12 << 20 + 3)
        try await storage.put("tier/small.bin", bytes: [1, 2, 3])
        _ = try await runBlocking(name: "test") {
            let writer = try storage.makeWriter("tier/big.bin")
            try big.withUnsafeBytes { try writer.write($0) }
            return try writer.finish()
        }
        #expect(try await storage.head("tier/big.bin").storageClass == nil, "new objects are STANDARD")

        try await storage.changeStorageClass("tier/small.bin", to: "STANDARD_IA")
        try await storage.changeStorageClass("tier/big.bin", to: "GLACIER_IR")
        #expect(try await storage.head("tier/small.bin").storageClass == "STANDARD_IA")
        #expect(try await storage.head("tier/big.bin").storageClass == "GLACIER_IR")
        #expect(try await storage.list(prefix: "tier/").map(\.storageClass) == ["GLACIER_IR", "STANDARD_IA"])
        #expect(try await storage.get("tier/small.bin") == [1, 2, 3])
        let back = try await runBlocking(name: "test") { try StorageContract.readAll(storage.makeReader("tier/big.bin", range: nil)) }
        #expect(back == big)
        let raw = try await runBlocking(name: "test") { try storage.exchange("HEAD", key: "tier/big.bin") }
        #expect(raw[header: "x-amz-server-side-encryption"] == "AES256", "encryption at rest survives the copy")
        #expect(try await storage.incompleteUploads(prefix: "").isEmpty)
    }

    private func aws(_ arguments: [String], endpoint: String) async throws {
        let result = try await ToolProcess.run("aws", ["--endpoint-url", endpoint, "--region", "us-east-1"] + arguments)
        #expect(result.status == 0, "aws \(arguments.joined(separator: " ")) failed")
    }
}

@Suite("S3 credentials", .enabled(if: S3TestEnvironment.integrationEnabled))
struct S3CredentialTests {
    @Test("web identity: the service account token is exchanged at STS and refreshed before expiry")
    func webIdentity() async throws {
        let endpoint = try S3TestEnvironment.endpoint()
        let tokenFile = FileManager.default.temporaryDirectory.appendingPathComponent("backstop-token-\(UUID().uuidString)").path
        try Data("eyJhbGciOiJSUzI1NiJ9.service-account-token".utf8).write(to: URL(fileURLWithPath: tokenFile))
        defer { try? FileManager.default.removeItem(atPath: tokenFile) }
        let http = try HTTPClient()
        let provider = try S3CredentialProvider.resolve(
            directory: nil,
            environment: ["AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile, "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/backstop",
                          "AWS_ENDPOINT_URL_STS": endpoint],
            region: "us-east-1", http: http)
        let first = try await runBlocking(name: "test") { try provider.current() }
        #expect(first.sessionToken?.isEmpty == false)
        let expiration = try #require(first.expiration)
        #expect(expiration > Date())
        #expect(try await runBlocking(name: "test") { try provider.current() } == first, "cached while fresh")
        let nearExpiry = expiration.addingTimeInterval(-60)
        let renewed = try await runBlocking(name: "test") { try provider.current(now: nearExpiry) }
        #expect(renewed.accessKeyID != first.accessKeyID, "renewed within five minutes of expiry")

        // The temporary keys sign S3 requests, session token included.
        let storage = try await S3TestEnvironment.makeStorage(credentials: renewed)
        try await storage.put("from-web-identity", bytes: [42])
        #expect(try await storage.get("from-web-identity") == [42])
    }

    @Test("missing or half-set credentials name what to set")
    func missingCredentials() throws {
        let http = try HTTPClient()
        #expect(throws: StorageError.self) { try S3CredentialProvider.resolve(directory: nil, environment: [:], region: "us-east-1", http: http) }
        do {
            _ = try S3CredentialProvider.resolve(directory: nil, environment: ["AWS_ACCESS_KEY_ID": "AKID"], region: "us-east-1", http: http)
            Issue.record("a key id without a secret was accepted")
        } catch {
            #expect(error.message.contains("AWS_SECRET_ACCESS_KEY"))
        }
        let provider = try S3CredentialProvider.resolve(
            directory: nil, environment: ["AWS_WEB_IDENTITY_TOKEN_FILE": "/nonexistent/token", "AWS_ROLE_ARN": "arn:aws:iam::1:role/r"],
            region: "us-east-1", http: http)
        #expect(throws: StorageError.self) { try provider.current() }
    }

    @Test("a mounted Secret folder is read, and re-read after a minute")
    func secretFolder() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("backstop-secret-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data("AKIDONE\n".utf8).write(to: folder.appendingPathComponent("AWS_ACCESS_KEY_ID"))
        try Data("secret-one\n".utf8).write(to: folder.appendingPathComponent("AWS_SECRET_ACCESS_KEY"))
        let provider = try S3CredentialProvider.resolve(directory: folder.path, environment: [:], region: "us-east-1", http: try HTTPClient())
        let now = Date()
        #expect(try provider.current(now: now) == S3Credentials(accessKeyID: "AKIDONE", secretAccessKey: "secret-one"))
        try Data("AKIDTWO".utf8).write(to: folder.appendingPathComponent("AWS_ACCESS_KEY_ID"))
        #expect(try provider.current(now: now.addingTimeInterval(10)).accessKeyID == "AKIDONE")
        #expect(try provider.current(now: now.addingTimeInterval(61)).accessKeyID == "AKIDTWO")
        #expect(!String(describing: try provider.current(now: now.addingTimeInterval(61))).contains("secret"))
    }
}

@Suite("S3 configuration")
struct S3ConfigurationTests {
    @Test("parts stay 8 MiB to about 80 GB, then grow so 10,000 parts hold 2 TB")
    func partSizes() {
        let configuration = S3Configuration(bucket: "b")
        #expect(configuration.partSize(forPart: 1) == 8 << 20)
        #expect(configuration.partSize(forPart: 9_500) == 8 << 20)
        #expect(configuration.partSize(forPart: 9_501) == 16 << 20)
        #expect(configuration.partSize(forPart: 10_000) == 5 << 30)
        let capacity = (1...10_000).reduce(Int64(0)) { $0 + Int64(configuration.partSize(forPart: $1)) }
        #expect(capacity > 2_000_000_000_000)
        let atEightMiB = (1...9_500).reduce(Int64(0)) { $0 + Int64(configuration.partSize(forPart: $1)) }
        #expect(atEightMiB > 79_000_000_000)
    }

    @Test("s3:// locations: bucket and prefix, or an error naming the fix")
    func locations() throws {
        #expect(try S3Configuration.bucketAndPrefix(of: "s3://acme-backups/k8s/prod/") == ("acme-backups", "/k8s/prod/"))
        #expect(S3Configuration(bucket: "b", prefix: "/k8s/prod/").prefix == "k8s/prod")
        for bad in ["s3://", "s3:///x", "s3://Upper/x", "s3://ab"] {
            #expect(throws: StorageError.self) { try S3Configuration.bucketAndPrefix(of: bad) }
        }
        var settings = StorageLocation.S3Settings()
        settings.serverSideEncryption = "aes256"
        #expect(throws: StorageError.self) { try StorageLocation.open("s3://bucket", s3: settings, environment: ["AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"]) }
        settings = StorageLocation.S3Settings()
        settings.endpoint = "minio:9000"
        #expect(throws: StorageError.self) { try StorageLocation.open("s3://bucket", s3: settings, environment: ["AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"]) }
    }

    @Test("virtual-host and path-style addresses, AWS and custom endpoints")
    func addresses() throws {
        let http = try HTTPClient()
        let credentials = S3CredentialProvider(source: .fixed(S3Credentials(accessKeyID: "a", secretAccessKey: "b")), http: http)
        func storage(_ endpoint: String?, pathStyle: Bool) -> S3Storage {
            S3Storage(configuration: S3Configuration(bucket: "acme-backups", prefix: "k8s", region: "eu-central-1", endpoint: endpoint, pathStyle: pathStyle),
                      credentials: credentials, http: http)
        }
        let aws = storage(nil, pathStyle: false).address(of: "k8s/a b+c.json")
        #expect(aws.base == "https://acme-backups.s3.eu-central-1.amazonaws.com")
        #expect(aws.host == "acme-backups.s3.eu-central-1.amazonaws.com")
        #expect(aws.path == "/k8s/a%20b%2Bc.json")
        let minio = storage("https://minio.storage:9000/", pathStyle: true).address(of: "k8s/x")
        #expect(minio.base == "https://minio.storage:9000" && minio.host == "minio.storage:9000" && minio.path == "/acme-backups/k8s/x")
        let bucketLevel = storage("http://127.0.0.1:9000", pathStyle: true).address(of: nil)
        #expect(bucketLevel.base == "http://127.0.0.1:9000" && bucketLevel.path == "/acme-backups")
        let r2 = storage("https://account.r2.cloudflarestorage.com", pathStyle: false).address(of: "k8s/x")
        #expect(r2.host == "acme-backups.account.r2.cloudflarestorage.com" && r2.path == "/k8s/x")
    }

    @Test("credentials never show in descriptions of requests")
    func redaction() {
        let request = HTTPRequest(method: "PUT", url: "https://b.s3.amazonaws.com/k?X-Amz-Signature=abc", headers: [
            HTTPHeader("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/…, Signature=deadbeef"),
            HTTPHeader("x-amz-security-token", "session-token"), HTTPHeader("x-amz-date", "20261122T000000Z"),
        ])
        let text = request.redactedDescription
        #expect(!text.contains("deadbeef") && !text.contains("session-token") && !text.contains("X-Amz-Signature"))
        #expect(text.contains("x-amz-date: 20261122T000000Z"))
        #expect(!String(describing: S3Credentials(accessKeyID: "AKID", secretAccessKey: "s3cr3t", sessionToken: "tok")).contains("s3cr3t"))
    }
}
