internal import BlockingCalls
internal import Foundation
#if canImport(Glibc)
internal import Glibc
#endif

/// Objects as files under a root folder (a mounted volume). Writes go to a temporary file
/// that is fsynced and renamed into place, so an object is either complete or absent.
public final class FileStorage: ObjectStorage {
    /// Marks unfinished uploads: never listed as objects; `incompleteUploads` finds the ones a
    /// killed writer left, and prune's sweep discards them.
    static let partialMarker = ".partial-"

    public let root: String
    private let io = DedicatedThread(name: "file-storage")

    public init(root: String) throws(StorageError) {
        var root = root
        while root.count > 1 && root.hasSuffix("/") { root.removeLast() }
        self.root = root
        do {
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        } catch {
            throw StorageError(.invalidLocation, key: nil,
                               "cannot create the storage folder \(root): \(error.localizedDescription); check the path and the volume's permissions")
        }
    }

    deinit { io.shutdown() }

    public var displayName: String { "file://\(root)" }

    public func put(_ key: String, bytes: [UInt8]) async throws(StorageError) {
        let path = try self.path(for: key)
        try await onIOThread { () throws(StorageError) in
            let writer = try FileObjectWriter(key: key, path: path)
            do {
                try bytes.withUnsafeBytes { try writer.write($0) }
                _ = try writer.finish()
            } catch {
                writer.abort()
                throw (error as? StorageError) ?? StorageError(.io, key: key, "cannot write \(key): \(error)")
            }
        }
    }

    public func putIfAbsent(_ key: String, bytes: [UInt8]) async throws(StorageError) -> Bool {
        let path = try self.path(for: key)
        return try await onIOThread { () throws(StorageError) -> Bool in
            let writer = try FileObjectWriter(key: key, path: path)
            do {
                try bytes.withUnsafeBytes { try writer.write($0) }
                return try writer.finish(replacing: false) != nil
            } catch {
                writer.abort()
                throw (error as? StorageError) ?? StorageError(.io, key: key, "cannot write \(key): \(error)")
            }
        }
    }

    public func get(_ key: String) async throws(StorageError) -> [UInt8] {
        let path = try self.path(for: key)
        return try await onIOThread { () throws(StorageError) -> [UInt8] in
            guard let data = FileManager.default.contents(atPath: path) else {
                throw Self.missingOrUnreadable(key: key, path: path)
            }
            return [UInt8](data)
        }
    }

    public func head(_ key: String) async throws(StorageError) -> ObjectInfo {
        let path = try self.path(for: key)
        return try await onIOThread { () throws(StorageError) -> ObjectInfo in
            var status = stat()
            guard stat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
                throw Self.missingOrUnreadable(key: key, path: path)
            }
            return ObjectInfo(key: key, size: Int64(status.st_size))
        }
    }

    public func list(prefix: String) async throws(StorageError) -> [ObjectInfo] {
        try await walk(prefix: prefix) { key, relative, status in
            relative.contains(Self.partialMarker) ? nil : ObjectInfo(key: key, size: Int64(status.st_size))
        }
    }

    public func incompleteUploads(prefix: String) async throws(StorageError) -> [IncompleteUpload] {
        try await walk(prefix: prefix) { key, relative, status in
            guard let marker = key.range(of: Self.partialMarker, options: .backwards), relative.contains(Self.partialMarker) else { return nil }
            return IncompleteUpload(key: String(key[..<marker.lowerBound]), uploadID: String(key[marker.upperBound...]),
                                    lastActivity: Date(timeIntervalSince1970: Double(status.st_mtim.tv_sec)))
        }
    }

    public func discard(_ upload: IncompleteUpload) async throws(StorageError) {
        try await delete([upload.key + Self.partialMarker + upload.uploadID])
    }

    /// Regular files under the folder that holds `prefix` (never the whole root) whose keys
    /// start with it, as `found` describes them, sorted by key.
    private func walk<T: Sendable>(prefix: String, _ found: @escaping @Sendable (_ key: String, _ relative: String, _ status: stat) -> T?)
        async throws(StorageError) -> [T] {
        let folderKey = prefix.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let root = root
        return try await onIOThread { () throws(StorageError) -> [T] in
            let folder = folderKey.isEmpty ? root : root + "/" + folderKey
            guard let walker = FileManager.default.enumerator(atPath: folder) else { return [] }
            var results: [(key: String, value: T)] = []
            while let relative = walker.nextObject() as? String {
                let key = folderKey.isEmpty ? relative : folderKey + "/" + relative
                guard key.hasPrefix(prefix) else { continue }
                var status = stat()
                guard stat(folder + "/" + relative, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG,
                      let result = found(key, relative, status) else { continue }
                results.append((key, result))
            }
            return results.sorted { $0.key < $1.key }.map(\.value)
        }
    }

    public func delete(_ keys: [String]) async throws(StorageError) {
        let paths = try keys.map { (key) throws(StorageError) in (key, try path(for: key)) }
        let root = root
        try await onIOThread { () throws(StorageError) in
            for (key, path) in paths {
                if unlink(path) != 0 && errno != ENOENT {
                    throw StorageError(.io, key: key, "cannot delete \(path): \(String(cString: strerror(errno)))")
                }
                // Tidy empty folders up to the root so deleted backups leave no trace.
                var folder = (path as NSString).deletingLastPathComponent
                while folder.count > root.count && rmdir(folder) == 0 {
                    folder = (folder as NSString).deletingLastPathComponent
                }
            }
        }
    }

    public func makeWriter(_ key: String) throws(StorageError) -> any ObjectWriter {
        try FileObjectWriter(key: key, path: path(for: key))
    }

    public func makeReader(_ key: String, range: Range<Int64>?) throws(StorageError) -> any ObjectReader {
        try FileObjectReader(key: key, path: path(for: key), range: range)
    }

    /// Rejects keys that could leave the root.
    func path(for key: String) throws(StorageError) -> String {
        try ObjectKey.validate(key)
        return root + "/" + key
    }

    private func onIOThread<T: Sendable>(_ body: @escaping @Sendable () throws(StorageError) -> T) async throws(StorageError) -> T {
        do {
            return try await io.run { try body() }
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError(.io, key: nil, "\(error)")
        }
    }

    static func missingOrUnreadable(key: String, path: String) -> StorageError {
        if access(path, F_OK) != 0 {
            return StorageError(.notFound, key: key, "no object \(key) (\(path) does not exist)")
        }
        return StorageError(.permissionDenied, key: key, "cannot read \(path): \(String(cString: strerror(errno))); check the volume's permissions")
    }
}

/// Writes to `<path>.partial-<random>`, then fsyncs and renames it into place.
final class FileObjectWriter: ObjectWriter {
    private let key: String
    private let path: String
    private let temporaryPath: String
    private var descriptor: Int32
    private var size: Int64 = 0

    init(key: String, path: String) throws(StorageError) {
        self.key = key
        self.path = path
        let folder = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw StorageError(.io, key: key, "cannot create \(folder): \(error.localizedDescription)")
        }
        temporaryPath = path + FileStorage.partialMarker + String(UInt32.random(in: .min ... .max), radix: 16)
        descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw StorageError(errno == EACCES ? .permissionDenied : .io, key: key,
                               "cannot create \(temporaryPath): \(String(cString: strerror(errno)))")
        }
    }

    deinit { abort() }

    func write(_ bytes: UnsafeRawBufferPointer) throws(StorageError) {
        guard descriptor >= 0 else { throw StorageError(.io, key: key, "write to \(key) after it was finished or aborted") }
        if let failure = writeAll(descriptor, bytes) {
            throw StorageError(.io, key: key, "cannot write \(temporaryPath): \(String(cString: strerror(failure)))")
        }
        size += Int64(bytes.count)
    }

    func finish() throws(StorageError) -> ObjectInfo {
        // Replacing never meets an existing object, so there is always a result.
        try finish(replacing: true) ?? ObjectInfo(key: key, size: size)
    }

    /// Publishes the file: by rename (replacing), or by link, which fails when the name is
    /// taken (`nil`), so creating an object that must not exist yet is atomic.
    func finish(replacing: Bool) throws(StorageError) -> ObjectInfo? {
        guard descriptor >= 0 else { throw StorageError(.io, key: key, "\(key) was already finished or aborted") }
        guard fsync(descriptor) == 0 else {
            throw StorageError(.io, key: key, "cannot flush \(temporaryPath) to disk: \(String(cString: strerror(errno)))")
        }
        close(descriptor)
        descriptor = -1
        if !replacing {
            let linked = link(temporaryPath, path) == 0
            let reason = errno
            unlink(temporaryPath)
            if !linked && reason == EEXIST { return nil }
            guard linked else {
                throw StorageError(.io, key: key, "cannot create \(path): \(String(cString: strerror(reason)))")
            }
        } else if rename(temporaryPath, path) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(temporaryPath)
            throw StorageError(.io, key: key, "cannot rename \(temporaryPath) to \(path): \(reason)")
        }
        // The rename is durable only once the folder is synced.
        let folder = open((path as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if folder >= 0 {
            fsync(folder)
            close(folder)
        }
        return ObjectInfo(key: key, size: size)
    }

    func abort() {
        guard descriptor >= 0 else { return }
        close(descriptor)
        descriptor = -1
        unlink(temporaryPath)
    }
}

final class FileObjectReader: ObjectReader {
    private var descriptor: Int32
    private let key: String
    private var remaining: Int64

    init(key: String, path: String, range: Range<Int64>?) throws(StorageError) {
        self.key = key
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw FileStorage.missingOrUnreadable(key: key, path: path) }
        remaining = Int64.max
        if let range {
            guard lseek(descriptor, off_t(range.lowerBound), SEEK_SET) >= 0 else {
                Glibc.close(descriptor)
                throw StorageError(.io, key: key, "cannot seek in \(path): \(String(cString: strerror(errno)))")
            }
            remaining = Int64(range.count)
        }
    }

    deinit { close() }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(StorageError) -> Int {
        guard descriptor >= 0 else { return 0 }
        let wanted = Int(min(Int64(buffer.count), remaining))
        guard wanted > 0 else { return 0 }
        while true {
            let got = Glibc.read(descriptor, buffer.baseAddress, wanted)
            if got < 0 {
                if errno == EINTR { continue }
                throw StorageError(.io, key: key, "cannot read \(key): \(String(cString: strerror(errno)))")
            }
            remaining -= Int64(got)
            return got
        }
    }

    func close() {
        guard descriptor >= 0 else { return }
        Glibc.close(descriptor)
        descriptor = -1
    }
}
