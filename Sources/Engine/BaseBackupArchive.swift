internal import BackstopAPI
internal import BlockingCalls
internal import Foundation
internal import Pipeline
#if canImport(Glibc)
internal import Glibc
#endif

/// What a physical base backup's tar stream holds, read as it passes: the members counted,
/// `backup_label` kept, and the WAL range from pg_basebackup's `backup_manifest` (which it
/// appends to the tar it writes to stdout).
struct BaseBackupContents: Sendable, Equatable {
    var entryCount = 0
    var backupLabel: String?
    var hasBackupManifest = false
    var walRange: WALRange?

    struct WALRange: Sendable, Equatable {
        let timeline: UInt32
        let start: LogSequenceNumber
        let end: LogSequenceNumber
    }

    /// The start location and timeline `backup_label` names.
    var labelStart: (lsn: LogSequenceNumber, timeline: UInt32)? {
        guard let backupLabel else { return nil }
        var lsn: LogSequenceNumber?
        var timeline: UInt32?
        for line in backupLabel.split(separator: "\n") {
            if line.hasPrefix("START WAL LOCATION: "), let text = line.dropFirst(20).split(separator: " ").first {
                lsn = try? LogSequenceNumber(String(text))
            } else if line.hasPrefix("START TIMELINE: ") {
                timeline = UInt32(line.dropFirst(16).trimmingCharacters(in: .whitespaces))
            }
        }
        guard let lsn, let timeline else { return nil }
        return (lsn, timeline)
    }

    /// Fails unless the stream was a complete base backup.
    func checkComplete(_ what: String) throws(EngineError) {
        guard backupLabel != nil else {
            throw EngineError(.integrity, "\(what) holds no backup_label: it is not a complete base backup")
        }
        guard hasBackupManifest, walRange != nil else {
            throw EngineError(.integrity, "\(what) holds no backup_manifest with a WAL range (pg_basebackup 13 or newer writes one): it cannot be checked or recovered")
        }
    }
}

/// Passes a base backup's tar stream through unchanged while reading it (`BaseBackupContents`),
/// and optionally writes its members under a folder (a restore's data directory).
final class BaseBackupReader: StreamStage, TarEntryHandler {
    private var reader: TarReader!
    private(set) var contents = BaseBackupContents()
    private let extractor: TarExtractor?
    private var current: TarEntry?
    private var captured: [UInt8] = []
    /// `backup_manifest` lists every file before its WAL range: only its end is kept.
    private static let manifestTailLimit = 1 << 20

    init(extractingInto directory: String? = nil, durable: Bool = false) {
        extractor = directory.map { TarExtractor(root: $0, durable: durable) }
        reader = TarReader(handler: self)
    }

    func process(_ input: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) throws -> Void) throws {
        try reader.process(input)
        try output(input)
    }

    func finish(output: (UnsafeRawBufferPointer) throws -> Void) throws {
        try reader.finish()
        contents.entryCount = reader.entryCount
    }

    func begin(_ entry: TarEntry) throws {
        current = entry
        captured.removeAll(keepingCapacity: true)
        try extractor?.begin(entry)
    }

    func data(_ bytes: UnsafeRawBufferPointer) throws {
        try extractor?.data(bytes)
        guard let current, current.path == "backup_label" || current.path == "backup_manifest" else { return }
        captured.append(contentsOf: bytes)
        if captured.count > 2 * Self.manifestTailLimit {
            captured.removeFirst(captured.count - Self.manifestTailLimit)
        }
    }

    func end(_ entry: TarEntry) throws {
        try extractor?.end(entry)
        switch entry.path {
        case "backup_label":
            contents.backupLabel = String(decoding: captured, as: UTF8.self)
        case "backup_manifest":
            contents.hasBackupManifest = true
            contents.walRange = Self.walRange(inManifestTail: captured)
        default: break
        }
        current = nil
    }

    /// `"WAL-Ranges": [ { "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" } ]`
    /// near the end of `backup_manifest`. A base backup spans one timeline unless it was taken
    /// on a standby that was promoted meanwhile; the range used is the last one.
    static func walRange(inManifestTail bytes: [UInt8]) -> BaseBackupContents.WALRange? {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let key = text.range(of: "\"WAL-Ranges\""),
              let open = text[key.upperBound...].firstIndex(of: "["),
              let close = text[open...].firstIndex(of: "]"),
              let ranges = try? JSONSerialization.jsonObject(with: Data(text[open...close].utf8)) as? [[String: Any]],
              let last = ranges.last,
              let timeline = last["Timeline"] as? Int,
              let start = (last["Start-LSN"] as? String).flatMap({ try? LogSequenceNumber($0) }),
              let end = (last["End-LSN"] as? String).flatMap({ try? LogSequenceNumber($0) }) else { return nil }
        return .init(timeline: UInt32(timeline), start: start, end: end)
    }
}

/// Writes tar members under `root`: folders, regular files with their permission bits.
/// Paths that would leave `root` (absolute, `..`) and links are refused: a base backup of a
/// cluster without extra tablespaces has neither.
final class TarExtractor {
    private let root: String
    private let durable: Bool
    private var descriptor: Int32 = -1

    init(root: String, durable: Bool) {
        self.root = root
        self.durable = durable
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    func begin(_ entry: TarEntry) throws {
        // pg_basebackup writes some folders as `./pg_wal/…`.
        let components = entry.path.split(separator: "/").filter { $0 != "." }
        guard !entry.path.hasPrefix("/"), !components.contains("..") else {
            throw EngineError(.integrity, "the base backup holds \"\(entry.path)\", a path outside the data directory: refused")
        }
        if components.isEmpty, entry.kind == .directory { return }
        let path = root + "/" + components.joined(separator: "/")
        switch entry.kind {
        case .directory:
            if mkdir(path, mode_t(entry.mode == 0 ? 0o700 : entry.mode)) != 0 && errno != EEXIST {
                throw EngineError(.restoreFailed, "cannot create \(path): \(String(cString: strerror(errno)))")
            }
        case .file:
            descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(entry.mode == 0 ? 0o600 : entry.mode))
            guard descriptor >= 0 else {
                throw EngineError(.restoreFailed, "cannot create \(path): \(String(cString: strerror(errno)))")
            }
        case .symbolicLink(let target):
            throw EngineError(.restoreFailed, "the base backup holds a link \(entry.path) → \(target) (a tablespace or a moved pg_wal): restore it by hand; backstop restores a single data directory")
        case .other(let type):
            throw EngineError(.restoreFailed, "the base backup holds \(entry.path) of tar type \(Character(UnicodeScalar(type))), which a data directory never has: refused")
        }
    }

    func data(_ bytes: UnsafeRawBufferPointer) throws {
        if let failure = writeAll(descriptor, bytes) {
            throw EngineError(.restoreFailed, "cannot write into \(root): \(String(cString: strerror(failure)))")
        }
    }

    /// When `durable`, each file is synced as it is closed: a server started later (another
    /// pod, after a node restart) must find all of them, as pg_basebackup and pgBackRest make
    /// sure of.
    func end(_ entry: TarEntry) throws {
        guard descriptor >= 0 else { return }
        defer { descriptor = -1 }
        guard !durable || fsync(descriptor) == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw EngineError(.restoreFailed, "cannot sync \(entry.path) in \(root) to disk: \(reason)")
        }
        guard close(descriptor) == 0 else {
            throw EngineError(.restoreFailed, "cannot finish \(entry.path) in \(root): \(String(cString: strerror(errno)))")
        }
    }
}
