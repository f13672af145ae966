import Foundation
import Storage
import Testing
import BlockingCalls

/// The behaviour every `ObjectStorage` must have. Each backend's test calls `check` with a
/// fresh, empty storage; S3Storage will run the same function.
enum StorageContract {
    /// `atomicCreate: false` skips the racing-creators check for servers known not to make
    /// conditional writes atomic (moto; AWS S3 and files do).
    static func check(_ storage: any ObjectStorage, atomicCreate: Bool = true) async throws {
        // put / get / head
        try await storage.put("a/b/small.json", bytes: Array("{}".utf8))
        #expect(try await storage.get("a/b/small.json") == Array("{}".utf8))
        #expect(try await storage.head("a/b/small.json") == ObjectInfo(key: "a/b/small.json", size: 2))
        try await storage.put("a/b/small.json", bytes: Array("[1]".utf8))
        #expect(try await storage.get("a/b/small.json") == Array("[1]".utf8), "put replaces")

        // create-if-absent: one winner, the object untouched by the loser
        #expect(try await storage.putIfAbsent("a/lease", bytes: [1]))
        #expect(try await storage.putIfAbsent("a/lease", bytes: [2]) == false)
        #expect(try await storage.get("a/lease") == [1])
        try await storage.delete(["a/lease"])
        if atomicCreate {
            let winners = try await withThrowingTaskGroup(of: Bool.self) { group in
                for attempt in 0..<4 { group.addTask { try await storage.putIfAbsent("a/race", bytes: [UInt8(attempt)]) } }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(winners == 1, "exactly one of four racing creators wins")
            try await storage.delete(["a/race"])
        }

        // streaming put of 5 MiB in uneven pieces; visible only after finish
        let big = (0..<(5 * 1024 * 1024 + 17)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        // Writers and readers block: they run on threads of their own, as in the engine.
        let writer = try await runBlocking(name: "test") { UncheckedBox(try storage.makeWriter("a/big.bin")) }
        try await runBlocking(name: "test") {
            var offset = 0
            while offset < big.count {
                let end = min(big.count, offset + 700_001)
                try big[offset..<end].withUnsafeBytes { try writer.value.write($0) }
                offset = end
            }
        }
        #expect((try? await storage.head("a/big.bin")) == nil, "an unfinished upload is invisible")
        #expect(try await runBlocking(name: "test") { try writer.value.finish() } == ObjectInfo(key: "a/big.bin", size: Int64(big.count)))
        #expect(try await storage.get("a/big.bin") == big)

        // streaming and ranged reads
        #expect(try await read(storage, "a/big.bin", nil) == big)
        #expect(try await read(storage, "a/big.bin", 1000..<5000) == Array(big[1000..<5000]))
        #expect(try await read(storage, "a/big.bin", Int64(big.count - 3)..<Int64(big.count)) == Array(big.suffix(3)))

        // an aborted upload leaves nothing
        try await runBlocking(name: "test") {
            let aborted = try storage.makeWriter("a/aborted.bin")
            try Array(repeating: UInt8(1), count: 1000).withUnsafeBytes { try aborted.write($0) }
            aborted.abort()
        }
        #expect((try? await storage.head("a/aborted.bin")) == nil)
        #expect(try await storage.incompleteUploads(prefix: "a/").isEmpty, "an aborted upload is not left unfinished")

        // A writer that never finishes nor aborts (its process was killed): not an object,
        // but an unfinished upload that can be found and discarded.
        let killed = try await runBlocking(name: "test") { () throws -> UncheckedBox<any ObjectWriter> in
            let writer = try storage.makeWriter("a/killed/data.bin")
            // More than a part, so S3 has a multipart upload under way.
            try Array(repeating: UInt8(7), count: 5 * 1024 * 1024 + 1).withUnsafeBytes { try writer.write($0) }
            return UncheckedBox(writer)
        }
        #expect(try await storage.list(prefix: "a/killed/").isEmpty)
        let unfinished = try await storage.incompleteUploads(prefix: "a/")
        #expect(Set(unfinished.map(\.key)) == ["a/killed/data.bin"], "\(unfinished)")
        #expect(try await storage.incompleteUploads(prefix: "b/").isEmpty, "only under the prefix")
        for upload in unfinished { try await storage.discard(upload) }
        #expect(try await storage.incompleteUploads(prefix: "a/").isEmpty)
        if let upload = unfinished.first { try await storage.discard(upload) }  // already gone: not an error
        try await runBlocking(name: "test") { killed.value.abort() }

        // list by prefix: sorted, only under the prefix, "a/b" is not "a/bc"
        try await storage.put("a/bc/other.json", bytes: [1])
        try await storage.put("z.json", bytes: [2])
        #expect(try await storage.list(prefix: "a/b/").map(\.key) == ["a/b/small.json"])
        #expect(try await storage.list(prefix: "a/").map(\.key) == ["a/b/small.json", "a/bc/other.json", "a/big.bin"])
        #expect(try await storage.list(prefix: "a/b").map(\.key) == ["a/b/small.json", "a/bc/other.json", "a/big.bin"], "a key prefix, not a folder")
        #expect(try await storage.list(prefix: "nothing/").isEmpty)

        // delete, including keys that do not exist
        try await storage.delete(["a/b/small.json", "a/never.json"])
        #expect(try await storage.list(prefix: "a/").map(\.key) == ["a/bc/other.json", "a/big.bin"])

        // a missing key is a typed error
        do {
            _ = try await storage.get("a/missing")
            Issue.record("get of a missing key succeeded")
        } catch { expectNotFound(error) }
        do {
            _ = try await storage.head("a/missing")
            Issue.record("head of a missing key succeeded")
        } catch { expectNotFound(error) }
        do {
            _ = try await runBlocking(name: "test") { UncheckedBox(try storage.makeReader("a/missing", range: nil)) }
            Issue.record("reading a missing key succeeded")
        } catch let error as StorageError { expectNotFound(error) }
    }

    static func expectNotFound(_ error: StorageError) {
        #expect(error.kind == .notFound)
        #expect(error.key == "a/missing")
    }

    /// Reads a whole object or range on a thread of its own.
    static func read(_ storage: any ObjectStorage, _ key: String, _ range: Range<Int64>?) async throws -> [UInt8] {
        try await runBlocking(name: "test") { try readAll(storage.makeReader(key, range: range)) }
    }

    static func readAll(_ reader: any ObjectReader) throws -> [UInt8] {
        defer { reader.close() }
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let got = try buffer.withUnsafeMutableBytes { try reader.read(into: $0) }
            if got == 0 { return result }
            result.append(contentsOf: buffer[0..<got])
        }
    }
}

@Suite("FileStorage")
struct FileStorageTests {
    @Test func passesTheContract() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("backstop-storage-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try await StorageContract.check(try FileStorage(root: root))
    }

    @Test func keysCannotLeaveTheRoot() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("backstop-storage-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let storage = try FileStorage(root: root)
        for key in ["../escape", "/etc/passwd", "a//b", "a/./b", ""] {
            await #expect(throws: StorageError.self) { try await storage.put(key, bytes: [1]) }
        }
    }

    @Test func locationsAreParsed() throws {
        #expect(throws: StorageError.self) { try StorageLocation.open("file://relative/path") }
        #expect(throws: StorageError.self) { try StorageLocation.open("ftp://host/x") }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("backstop-loc-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(try StorageLocation.open("file://" + root).displayName == "file://" + root)
    }
}

/// Carries a single-threaded object (a writer or reader) between the test and the thread it
/// is used on; never used from two threads at once.
struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
