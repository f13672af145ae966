import Foundation
import HTTP
@testable import Storage
import Testing

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
                            secret: String? = nil, endpoint: String? = nil) async throws -> S3Storage {
        let bucket = "backstop-\(UUID().uuidString.lowercased().prefix(18))"
        let http = try HTTPClient()
        let credentials = S3Credentials(accessKeyID: environment["AWS_ACCESS_KEY_ID"] ?? "AKIABACKSTOPTEST0001",
                                        secretAccessKey: secret ?? environment["AWS_SECRET_ACCESS_KEY"] ?? "secret")
        let storage = S3Storage(
            configuration: S3Configuration(bucket: bucket, prefix: prefix, region: "us-east-1",
                                           endpoint: try endpoint ?? self.endpoint(), pathStyle: true,
                                           partSize: partSize, maximumAttempts: 3),
            credentials: S3CredentialProvider(source: .fixed(credentials), http: http), http: http)
        try await runBucketRequest(storage, "PUT")
        return storage
    }

    static func runBucketRequest(_ storage: S3Storage, _ method: String) async throws {
        let thread = Task.detached { try storage.exchange(method, key: nil) }
        _ = try await thread.value
    }
}

struct MissingService: Error, CustomStringConvertible {
    let description: String
}

@Suite("S3Storage against moto", .enabled(if: S3TestEnvironment.integrationEnabled))
struct S3StorageTests {
    @Test func passesTheContract() async throws {
        let storage = try await S3TestEnvironment.makeStorage()
        try await StorageContract.check(storage)
        #expect(try await storage.pendingUploads(prefix: "").isEmpty, "no multipart upload left behind")
    }

    @Test func passesTheContractUnderAPrefix() async throws {
        let storage = try await S3TestEnvironment.makeStorage(prefix: "clusters/eu-1")
        try await StorageContract.check(storage)
        #expect(storage.displayName == "s3://\(storage.configuration.bucket)/clusters/eu-1")
    }

    @Test("a long stream goes up in parallel parts and comes back identical")
    func multipart() async throws {
        let storage = try await S3TestEnvironment.makeStorage()
        var generator = SplitMix(seed: 42)
        let data = (0..<(23 << 20)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        let writer = try storage.makeWriter("big/object.bin")
        try await Task.detached {
            var offset = 0
            while offset < data.count {
                let end = min(data.count, offset + 1_000_003)
                try data[offset..<end].withUnsafeBytes { try writer.write($0) }
                offset = end
            }
            #expect(try writer.finish() == ObjectInfo(key: "big/object.bin", size: Int64(data.count)))
        }.value
        #expect(try await storage.head("big/object.bin").size == Int64(data.count))
        let back = try await Task.detached { try StorageContract.readAll(storage.makeReader("big/object.bin", range: nil)) }.value
        #expect(back == data)
        #expect(try await storage.pendingUploads(prefix: "").isEmpty)
    }

    @Test("an aborted multipart upload leaves no parts behind")
    func abortedMultipart() async throws {
        let storage = try await S3TestEnvironment.makeStorage()
        try await Task.detached {
            let writer = try storage.makeWriter("aborted.bin")
            let chunk = [UInt8](repeating: 7, count: 12 << 20)
            try chunk.withUnsafeBytes { try writer.write($0) }
            writer.abort()
        }.value
        #expect(try await storage.pendingUploads(prefix: "").isEmpty)
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
        var generator = SplitMix(seed: 7)
        let data = (0..<(11 << 20 + 5)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        let writer = try storage.makeWriter("from-backstop.bin")
        _ = try await Task.detached {
            try data.withUnsafeBytes { try writer.write($0) }
            return try writer.finish()
        }.value
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("backstop-aws-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let bucket = storage.configuration.bucket
        try aws(["s3", "cp", "s3://\(bucket)/from-backstop.bin", folder.appendingPathComponent("down.bin").path], endpoint: storage.configuration.endpoint!)
        #expect(try Data(contentsOf: folder.appendingPathComponent("down.bin")) == Data(data))

        try Data(data.reversed()).write(to: folder.appendingPathComponent("up.bin"))
        try aws(["s3", "cp", folder.appendingPathComponent("up.bin").path, "s3://\(bucket)/from-cli.bin"], endpoint: storage.configuration.endpoint!)
        let back = try await Task.detached { try StorageContract.readAll(storage.makeReader("from-cli.bin", range: nil)) }.value
        #expect(back == Array(data.reversed()))
    }

    private func aws(_ arguments: [String], endpoint: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["aws", "--endpoint-url", endpoint, "--region", "us-east-1"] + arguments
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "aws \(arguments.joined(separator: " ")) failed")
    }
}

/// Deterministic, fast pseudo-random bytes (incompressible test data).
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
