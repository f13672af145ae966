import BackstopAPI
import Engine
import Foundation
import Storage
import TestSupport
import Testing

@Suite("The WAL archive: wal-push and wal-fetch", .serialized)
struct WALArchiveTests {
    static let segment = "000000010000000000000003"

    /// A segment-sized file of WAL-like bytes (mostly repetitive, some random).
    func writeSegment(_ folder: String, name: String = segment, seed: UInt8 = 1) throws -> String {
        var bytes = [UInt8](repeating: seed, count: 16 << 20)
        for index in stride(from: 0, to: bytes.count, by: 8_192) { bytes[index] = UInt8.random(in: 0...255) }
        let path = folder + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func archive(_ context: WorkerContext, key: String?) -> WALArchiveCommand {
        WALArchiveCommand(context: context, options: .init(encryption: key.map { .keyFile($0) } ?? .none))
    }

    @Test("push stores a segment with its record; the same push again succeeds; another file under that name is refused and nothing is overwritten",
          arguments: [false, true])
    func pushIsIdempotent(_ encrypted: Bool) async throws {
        let (context, root) = try TestEnvironment.makeContext(environment: "wal")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let folder = try CommandLineTests.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let key = encrypted ? try TestEnvironment.keyFile() : nil
        let path = try writeSegment(folder)

        let first = try await archive(context, key: key).push(path)
        guard case .archived(let record) = first else { Issue.record("not archived: \(first)"); return }
        #expect(record.plaintextSize == 16 << 20 && record.storedSize < record.plaintextSize / 4, "compressed: \(record.storedSize)")
        #expect((record.encryption != nil) == encrypted)
        let name = try WALFileName(Self.segment)
        let stored = try await context.storage.get(context.location.walObjectKey(name))
        #expect(context.location.walObjectKey(name).hasSuffix("/wal/00000001/000000010000000000000003"))
        #expect(try await archive(context, key: key).push(path) == .alreadyArchived)

        // Another server's segment of the same name.
        _ = try writeSegment(folder, seed: 2)
        let error = await #expect(throws: EngineError.self) { try await archive(context, key: key).push(path) }
        #expect(error?.kind == .conflict && error?.message.contains("never overwritten") == true, "\(error?.message ?? "")")
        #expect(try await context.storage.get(context.location.walObjectKey(name)) == stored, "the archived file is untouched")
    }

    @Test("push-ahead archives the other ready segments and marks them: PostgreSQL's call for one returns without storage; a changed file or a stale mark is not trusted")
    func pushAhead() async throws {
        let (context, root) = try TestEnvironment.makeContext(environment: "ahead")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let folder = try CommandLineTests.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder + "/pg_wal/archive_status", withIntermediateDirectories: true)
        let names = ["000000010000000000000003", "000000010000000000000004", "000000010000000000000005"]
        for (index, name) in names.enumerated() {
            _ = try writeSegment(folder + "/pg_wal", name: name, seed: UInt8(index + 1))
            _ = FileManager.default.createFile(atPath: folder + "/pg_wal/archive_status/\(name).ready", contents: nil)
        }
        let spool = folder + "/spool"
        let options = WALArchiveCommand.Options(encryption: .none, pushAhead: 4, spoolDirectory: spool)
        #expect(try await WALArchiveCommand(context: context, options: options).push(folder + "/pg_wal/" + names[0]) != .alreadyArchived)
        for name in names {
            #expect(try await context.storage.head(context.location.walRecordKey(try WALFileName(name))).size > 0, "\(name) archived")
        }
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: spool)) == Set(names.dropFirst().map { $0 + ".pushed" }))

        // Storage that cannot be reached: only a marked, unchanged file can succeed.
        var unreachable = context
        unreachable.storage = try StorageLocation.open("file://\(folder)/blocked")
        try FileManager.default.removeItem(atPath: folder + "/blocked")
        try Data("not a folder any more".utf8).write(to: URL(fileURLWithPath: folder + "/blocked"))
        let offline = WALArchiveCommand(context: unreachable, options: options)
        #expect(try await offline.push(folder + "/pg_wal/" + names[1]) == .alreadyArchived)
        _ = try writeSegment(folder + "/pg_wal", name: names[2], seed: 9)  // written again: another file under that name
        await #expect(throws: EngineError.self) { try await offline.push(folder + "/pg_wal/" + names[2]) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool).isEmpty, "marks are used once")

        // A mark whose segment is no longer waiting goes at the next scan.
        _ = FileManager.default.createFile(atPath: spool + "/000000010000000000000009.pushed", contents: Data("x".utf8))
        try FileManager.default.removeItem(atPath: folder + "/pg_wal/archive_status/\(names[1]).ready")
        _ = try await WALArchiveCommand(context: context, options: options).push(folder + "/pg_wal/" + names[0])
        #expect(!FileManager.default.fileExists(atPath: spool + "/000000010000000000000009.pushed"))
    }

    @Test("prefetch restores the following segments into the spool, checked; the calls for them move them into place without storage")
    func prefetch() async throws {
        let (context, root) = try TestEnvironment.makeContext(environment: "prefetch")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let folder = try CommandLineTests.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let names = ["000000010000000000000003", "000000010000000000000004", "000000010000000000000005", "000000010000000000000006"]
        var contents: [String: [UInt8]] = [:]
        for (index, name) in names.enumerated() {
            // A long page header as PostgreSQL writes it: xlp_seg_size (16 MiB) at byte 32.
            var bytes = [UInt8](repeating: UInt8(index + 1), count: 16 << 20)
            bytes.replaceSubrange(32..<36, with: [0, 0, 0, 1])
            try Data(bytes).write(to: URL(fileURLWithPath: folder + "/" + name))
            contents[name] = bytes
            _ = try await archive(context, key: nil).push(folder + "/" + name)
        }
        let spool = folder + "/spool"
        let options = WALArchiveCommand.Options(encryption: .none, prefetch: 2, spoolDirectory: spool)
        try FileManager.default.createDirectory(atPath: folder + "/restored", withIntermediateDirectories: true)
        #expect(try await WALArchiveCommand(context: context, options: options).fetch(names[0], to: folder + "/restored/RECOVERYXLOG") == .restored(bytes: 16 << 20))
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: spool)) == [names[1], names[2]])

        // Storage that cannot be reached: spooled segments still come, the others do not.
        var unreachable = context
        unreachable.storage = try StorageLocation.open("file://\(folder)/blocked")
        try FileManager.default.removeItem(atPath: folder + "/blocked")
        try Data("not a folder any more".utf8).write(to: URL(fileURLWithPath: folder + "/blocked"))
        let offline = WALArchiveCommand(context: unreachable, options: options)
        for name in names[1...2] {
            #expect(try await offline.fetch(name, to: folder + "/restored/" + name) == .restored(bytes: 16 << 20))
            #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: folder + "/restored/" + name))) == contents[name], "\(name) as archived")
        }
        await #expect(throws: EngineError.self) { try await offline.fetch(names[3], to: folder + "/restored/" + names[3]) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool).isEmpty, "spooled segments are moved, not copied")
    }

    @Test("fetch restores exactly the pushed bytes; a file not archived is `notArchived`; a changed byte, a wrong key or a bad name fail")
    func fetch() async throws {
        let (context, root) = try TestEnvironment.makeContext(environment: "walfetch")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let folder = try CommandLineTests.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let key = try TestEnvironment.keyFile()
        let path = try writeSegment(folder)
        let history = folder + "/00000002.history"
        try Data("1\t0/3000000\tno recovery target specified\n".utf8).write(to: URL(fileURLWithPath: history))
        _ = try await archive(context, key: key).push(path)
        _ = try await archive(context, key: key).push(history)

        let target = folder + "/RECOVERYXLOG"
        #expect(try await archive(context, key: key).fetch(Self.segment, to: target) == .restored(bytes: 16 << 20))
        #expect(FileManager.default.contents(atPath: target) == FileManager.default.contents(atPath: path))
        #expect(try await archive(context, key: key).fetch("00000002.history", to: folder + "/RECOVERYHISTORY") == .restored(bytes: 41))
        #expect(try await archive(context, key: key).fetch("000000010000000000000004", to: target) == .notArchived)
        #expect(try await archive(context, key: key).fetch("00000003.history", to: target) == .notArchived)
        // An archive that is not there (an unmounted volume, another location) is no end of
        // the archive: a segment asked of it fails, so recovery stops instead of promoting.
        let (elsewhere, elsewhereRoot) = try TestEnvironment.makeContext(environment: "nothing-here")
        defer { try? FileManager.default.removeItem(atPath: elsewhereRoot) }
        let missing = await #expect(throws: EngineError.self) { try await archive(elsewhere, key: key).fetch("000000010000000000000004", to: target) }
        #expect(missing?.message.contains("holds no WAL of timeline 00000001") == true, "\(missing?.message ?? "")")

        let wrongKey = await #expect(throws: EngineError.self) { try await archive(context, key: try TestEnvironment.keyFile()).fetch(Self.segment, to: target) }
        #expect(wrongKey?.kind == .encryption, "\(wrongKey?.message ?? "")")
        let badName = await #expect(throws: EngineError.self) { try await archive(context, key: key).fetch("../../etc/passwd", to: target) }
        #expect(badName?.kind == .invalidOption)

        let name = try WALFileName(Self.segment)
        var stored = try await context.storage.get(context.location.walObjectKey(name))
        stored[stored.count / 2] ^= 0x01
        try await context.storage.put(context.location.walObjectKey(name), bytes: stored)
        try? FileManager.default.removeItem(atPath: target)
        let damaged = await #expect(throws: EngineError.self) { try await archive(context, key: key).fetch(Self.segment, to: target) }
        #expect(damaged?.kind == .integrity && damaged?.message.contains("does not match its record") == true)
        #expect(!FileManager.default.fileExists(atPath: target), "nothing is put in place")
    }

    @Test("through S3 (moto): a push commits with a create-if-absent record, a repeat is recognised, a fetch restores the bytes")
    func throughS3() async throws {
        guard TestEnvironment.integrationEnabled else { return }
        let context = try await TestEnvironment.makeS3Context()
        let folder = try CommandLineTests.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let key = try TestEnvironment.keyFile()
        let path = try writeSegment(folder)
        guard case .archived = try await archive(context, key: key).push(path) else { Issue.record("not archived"); return }
        #expect(try await archive(context, key: key).push(path) == .alreadyArchived)
        #expect(try await archive(context, key: key).fetch(Self.segment, to: folder + "/RECOVERYXLOG") == .restored(bytes: 16 << 20))
        #expect(FileManager.default.contents(atPath: folder + "/RECOVERYXLOG") == FileManager.default.contents(atPath: path))
        _ = try writeSegment(folder, seed: 9)
        await #expect(throws: EngineError.self) { try await archive(context, key: key).push(path) }
    }

    @Test("WAL file names: segments, .history, .backup and .partial files only")
    func names() {
        for good in ["000000010000000000000003", "00000002.history", "000000010000000000000003.00000028.backup", "000000010000000000000003.partial"] {
            #expect((try? WALFileName(good)) != nil, "\(good)")
        }
        for bad in ["00000001000000000000000", "000000010000000000000003.x", "0000000a0000000000000003", "../00000002.history", "00000002.history/x", ""] {
            #expect((try? WALFileName(bad)) == nil, "\(bad)")
        }
    }

    @Test("the command line: wal-fetch exits 1 only for a file not in the archive, 255 for anything else (usage errors too); wal-push refuses a conflict")
    func exitCodes() async throws {
        let folder = try CommandLineTests.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let storage = ["BACKSTOP_STORAGE": "file://\(folder)/archive"]
        let path = try writeSegment(folder)
        #expect(try await CommandLineTests.backstop(["wal-push", path], storage).status == 0)
        var run = try await CommandLineTests.backstop(["wal-fetch", Self.segment, folder + "/restored"], storage)
        #expect(run.status == 0 && FileManager.default.contents(atPath: folder + "/restored") == FileManager.default.contents(atPath: path))
        run = try await CommandLineTests.backstop(["wal-fetch", "000000010000000000000009", folder + "/restored"], storage)
        #expect(run.status == 1 && run.errors.isEmpty, "\(run.errors)")
        run = try await CommandLineTests.backstop(["wal-fetch", Self.segment], storage)
        #expect(run.status == 255, "a usage error stops recovery: \(run.errors)")
        run = try await CommandLineTests.backstop(["wal-fetch", Self.segment, folder + "/restored"], [:])
        #expect(run.status == 255 && run.errorLine.contains("--storage"), "\(run.errors)")
        _ = try writeSegment(folder, seed: 3)
        run = try await CommandLineTests.backstop(["wal-push", path], storage)
        #expect(run.status == 1 && run.errorLine.contains("never overwritten"), "\(run.errors)")
    }
}
