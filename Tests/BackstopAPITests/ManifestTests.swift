import BackstopAPI
import Foundation
import Testing

@Suite("Manifest, ids, options")
struct ManifestTests {
    static let hash = String(repeating: "ab", count: 32)

    static func sample() throws -> BackupManifest {
        BackupManifest(
            id: try BackupID("20261121T020000Z-3f9a"), namespace: "shop", policy: "orders", environment: "production",
            toolVersion: "0.1.0",
            database: .init(name: "orders", serverVersion: "15.18", serverVersionNumber: 150018, pgDumpVersion: "15.18"),
            startedAt: UTCTimestamp(secondsSince1970: 1_795_312_800), completedAt: UTCTimestamp(secondsSince1970: 1_795_312_812),
            durationSeconds: 12.5, dump: .init(), compression: .init(algorithm: .zstd, level: 3),
            encryption: .init(algorithm: "AES-256-GCM-chunked-v1", chunkSize: 1 << 20, keyFingerprint: "hmac-sha256:0011223344556677",
                              kdf: .init(name: "scrypt", salt: "c2FsdA==", n: 32768, r: 8, p: 1)),
            objects: [.init(name: "data.dump.zst.enc", size: 5 * 1024 * 1024, sha256: hash, blockSize: 4 * 1024 * 1024,
                            blockSHA256: [hash, hash])],
            plaintext: .init(size: 9_000_000, sha256: hash),
            tables: [.init(schema: "shop", name: "orders", rows: 20_000)], previousManifestSHA256: hash)
    }

    @Test func roundTrip() throws {
        let manifest = try Self.sample()
        let decoded = try BackupManifest.decode(try manifest.encoded())
        #expect(decoded == manifest)
        // Canonical: encoding twice gives the same bytes, so the hash chain is stable.
        #expect(try decoded.encoded() == manifest.encoded())
    }

    @Test("a missing field is named", arguments: ["id", "objects", "plaintext", "compression", "startedAt"])
    func missingField(_ field: String) throws {
        var object = try JSONSerialization.jsonObject(with: try Self.sample().encoded()) as! [String: Any]
        object.removeValue(forKey: field)
        let error = #expect(throws: BackstopAPIError.self) {
            try BackupManifest.decode(try JSONSerialization.data(withJSONObject: object))
        }
        #expect(error?.field == field)
        #expect(error?.problem == "missing")
    }

    @Test func nestedWrongFieldIsNamed() throws {
        var object = try JSONSerialization.jsonObject(with: try Self.sample().encoded()) as! [String: Any]
        var objects = object["objects"] as! [[String: Any]]
        objects[0]["size"] = "big"
        object["objects"] = objects
        let error = #expect(throws: BackstopAPIError.self) {
            try BackupManifest.decode(try JSONSerialization.data(withJSONObject: object))
        }
        #expect(error?.field == "objects[0].size")
    }

    @Test func semanticChecksNameTheField() throws {
        var manifest = try Self.sample()
        manifest.objects[0].blockSHA256 = [Self.hash]
        #expect(throws: BackstopAPIError.self) { try manifest.validate() }
        var badHash = try Self.sample()
        badHash.plaintext.sha256 = "xyz"
        let error = #expect(throws: BackstopAPIError.self) { try badHash.validate() }
        #expect(error?.field == "plaintext.sha256")
        var future = try Self.sample()
        future.formatVersion = 99
        #expect((#expect(throws: BackstopAPIError.self) { try future.validate() })?.field == "formatVersion")
        var badTime = try Self.sample()
        badTime.completedAt = UTCTimestamp(secondsSince1970: 0)
        #expect((#expect(throws: BackstopAPIError.self) { try badTime.validate() })?.field == "completedAt")
    }

    @Test func backupIDs() throws {
        var random = SystemRandomNumberGenerator()
        let id = BackupID.make(secondsSince1970: 1_795_312_800, using: &random)
        #expect(id.rawValue.hasPrefix("20261122T020000Z-"))
        #expect(try BackupID(id.rawValue) == id)
        #expect(throws: BackstopAPIError.self) { try BackupID("latest") }
        #expect(throws: BackstopAPIError.self) { try BackupID("20261121T020000Z-3F9A") }
        #expect(try BackupID("20261121T020000Z-0000") < BackupID("20261121T020001Z-0000"))
    }

    @Test("timestamps round trip", arguments: [Int64(0), 951_782_400, 1_795_312_800, 4_102_444_799, -86_400])
    func timestamps(_ seconds: Int64) throws {
        let stamp = UTCTimestamp(secondsSince1970: seconds)
        #expect(UTCTimestamp(rfc3339: stamp.rfc3339) == stamp)
        #expect(UTCTimestamp(secondsSince1970: 951_782_400).rfc3339 == "2000-02-29T00:00:00Z")
        #expect(UTCTimestamp(rfc3339: "2026-02-30T00:00:00Z") == nil)
    }

    @Test func optionsResolveFlagThenVariableThenDefault() {
        let environment = ["BACKSTOP_STORAGE": "file:///from-env", "BACKSTOP_NAMESPACE": ""]
        #expect(WorkerOption.storage.resolve(flag: "file:///flag", environment: environment) == "file:///flag")
        #expect(WorkerOption.storage.resolve(flag: nil, environment: environment) == "file:///from-env")
        #expect(WorkerOption.namespace.resolve(flag: nil, environment: environment) == "default")
        #expect(WorkerOption.encryptionKeyFile.environmentVariable == "BACKSTOP_ENCRYPTION_KEY_FILE")
        #expect(Set(WorkerOption.allCases.map(\.environmentVariable)).count == WorkerOption.allCases.count)
    }

    @Test func locationsStayInsideTheirEnvironment() throws {
        let location = try BackupLocation(namespace: "shop", policy: "orders", environment: "prod")
        #expect(location.environmentPrefix == "shop/orders/prod/")
        #expect(throws: BackstopAPIError.self) { try BackupLocation(namespace: "../x", policy: "p", environment: "e") }
        #expect(throws: BackstopAPIError.self) { try BackupLocation(namespace: "Shop", policy: "p", environment: "e") }
    }

    @Test func reportStaysWithinTheTerminationMessageLimit() {
        let report = WorkerReport(command: "backup", outcome: .failed, startedAt: UTCTimestamp(secondsSince1970: 0),
                                  completedAt: UTCTimestamp(secondsSince1970: 1), durationSeconds: 1,
                                  message: String(repeating: "pg_dump: error: ", count: 1000))
        let line = report.encodedLine()
        #expect(line.utf8.count <= WorkerReport.maximumEncodedSize)
        #expect(!line.contains("\n"))
        #expect(line.contains("\"outcome\":\"failed\""))
    }
}

@Suite("Backup id order")
struct BackupIDOrderTests {
    @Test func idsInTheSameSecondSortInCreationOrder() throws {
        var random = SystemRandomNumberGenerator()
        var newest: BackupID?
        for _ in 0..<200 {
            let id = BackupID.make(secondsSince1970: 1_795_312_800, after: newest, using: &random)
            if let newest { #expect(id > newest) }
            newest = id
        }
        let full = try BackupID("20261122T020000Z-ffff")
        let next = BackupID.make(secondsSince1970: 1_795_312_800, after: full, using: &random)
        #expect(next > full)
        #expect(next.secondsSince1970 == 1_795_312_801)
    }
}
