import Foundation
import Pipeline
import Testing

/// The tar reader against archives GNU tar writes (ustar, pax and GNU long names), fed
/// whole and in odd pieces, and against damaged and cut-short archives.
@Suite("Reading tar streams")
struct TarReaderTests {
    final class Collector: TarEntryHandler {
        var entries: [TarEntry] = []
        var contents: [String: [UInt8]] = [:]
        private var current: String?

        func begin(_ entry: TarEntry) throws {
            entries.append(entry)
            current = entry.path
            if entry.kind == .file { contents[entry.path] = [] }
        }
        func data(_ bytes: UnsafeRawBufferPointer) throws { contents[current!]!.append(contentsOf: bytes) }
        func end(_ entry: TarEntry) throws { #expect(entry.path == current) }
    }

    static let longName = String(repeating: "segment-", count: 11) + "xx"

    /// A folder of files, links and a long path, archived by `tar` in `format`.
    static func archive(format: String) throws -> [UInt8] {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tar-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        // The file's path (102 characters) is past a name field's 100: ustar splits it into
        // prefix and name, GNU writes a long-name member, pax a path record.
        let long = Self.longName
        try FileManager.default.createDirectory(atPath: "\(root)/data/base/\(long)", withIntermediateDirectories: true)
        try Data("START WAL LOCATION: 0/2000028\n".utf8).write(to: URL(fileURLWithPath: "\(root)/data/backup_label"))
        try Data(repeating: 7, count: 70_001).write(to: URL(fileURLWithPath: "\(root)/data/base/\(long)/1259"))
        try Data().write(to: URL(fileURLWithPath: "\(root)/data/empty"))
        try FileManager.default.createSymbolicLink(atPath: "\(root)/data/link", withDestinationPath: "backup_label")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/tar")
        process.arguments = ["--format=\(format)", "--sort=name", "-cf", "\(root)/out.tar", "-C", "\(root)/data", "."]
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0)
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(root)/out.tar")))
    }

    static func read(_ bytes: [UInt8], pieces: Int) throws -> (Collector, TarReader) {
        let collector = Collector()
        let reader = TarReader(handler: collector)
        try bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let end = min(buffer.count, offset + pieces)
                try reader.process(UnsafeRawBufferPointer(rebasing: buffer[offset..<end]))
                offset = end
            }
        }
        try reader.finish()
        return (collector, reader)
    }

    @Test("every member, its kind, mode and bytes, whatever the pieces", arguments: ["ustar", "gnu", "pax"], [1, 511, 513, 1 << 20])
    func members(format: String, pieces: Int) throws {
        let (collector, reader) = try Self.read(try Self.archive(format: format), pieces: pieces)
        let long = Self.longName
        let paths = collector.entries.map { $0.path.hasPrefix("./") ? String($0.path.dropFirst(2)) : $0.path }
        #expect(paths.contains("backup_label"))
        #expect(paths.contains("base/\(long)/1259"), "\(paths)")
        #expect(reader.reachedEnd)
        let file = try #require(collector.entries.first { $0.path.hasSuffix("/1259") })
        #expect(file.kind == .file && file.size == 70_001)
        #expect(collector.contents[file.path] == [UInt8](repeating: 7, count: 70_001))
        #expect(collector.entries.first { $0.path.hasSuffix("link") }?.kind == .symbolicLink(target: "backup_label"))
        #expect(collector.entries.first { $0.path.hasSuffix("empty") }.map { $0.kind == .file && $0.size == 0 } == true)
        #expect(collector.entries.filter { $0.kind == .directory }.count >= 3)
    }

    @Test("a damaged header, a cut-short archive and data after the end are errors")
    func damage() throws {
        let bytes = try Self.archive(format: "ustar")
        var flipped = bytes
        flipped[100] ^= 0x01  // the first header's mode field: the checksum no longer matches
        #expect(throws: PipelineError.self) { _ = try Self.read(flipped, pieces: 4096) }
        do {
            _ = try Self.read(Array(bytes.prefix(bytes.count / 2)), pieces: 4096)
            Issue.record("half an archive was read as whole")
        } catch let error as PipelineError {
            #expect(error.kind == .truncated, "\(error)")
        }
        #expect(throws: PipelineError.self) { _ = try Self.read(bytes + Array("trailing".utf8), pieces: 4096) }
        #expect(throws: PipelineError.self) { _ = try Self.read(Array("not a tar archive at all".utf8) + [UInt8](repeating: 1, count: 1000), pieces: 4096) }
    }
}
