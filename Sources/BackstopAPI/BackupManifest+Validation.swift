public import Foundation

extension BackupManifest {
    /// Decodes and validates a stored manifest. Every failure names the field.
    public static func decode(_ data: Data) throws(BackstopAPIError) -> BackupManifest {
        let manifest: BackupManifest
        do {
            manifest = try JSONDecoder().decode(BackupManifest.self, from: data)
        } catch let error as DecodingError {
            throw BackstopAPIError(decoding: error, document: fileName)
        } catch {
            throw BackstopAPIError(field: fileName, problem: "unreadable: \(error)",
                                   fix: "the file is damaged; restore from another backup")
        }
        try manifest.validate()
        return manifest
    }

    /// Canonical bytes: sorted keys, so the hash chain is stable across writers.
    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    /// Checks what the types cannot: versions, hashes, sizes and block lists that agree.
    public func validate() throws(BackstopAPIError) {
        guard formatVersion >= 1, formatVersion <= BackupManifest.currentFormatVersion else {
            throw BackstopAPIError(
                field: "formatVersion", problem: "version \(formatVersion) is not supported by this backstop",
                fix: "use a backstop release that reads format \(formatVersion)")
        }
        for (field, value) in [("namespace", namespace), ("policy", policy), ("environment", environment)] {
            try BackupLocation.checkName(value, field: field)
        }
        guard completedAt >= startedAt, durationSeconds >= 0 else {
            throw BackstopAPIError(field: "completedAt", problem: "ends before it starts",
                                   fix: "the manifest is damaged; restore from another backup")
        }
        guard !objects.isEmpty else {
            throw BackstopAPIError(field: "objects", problem: "empty",
                                   fix: "the manifest is damaged; restore from another backup")
        }
        for (index, object) in objects.enumerated() {
            try Self.check(object, field: "objects[\(index)]")
        }
        try Self.checkSHA256(plaintext.sha256, field: "plaintext.sha256")
        guard isPhysical == (physical != nil), dump.format == DumpInfo().format || isPhysical else {
            throw BackstopAPIError(field: "dump.format", problem: "\"\(dump.format)\" with\(physical == nil ? "out" : "") physical details",
                                   fix: "the manifest is damaged, or written by a newer backstop; restore from another backup")
        }
        if let physical, physical.stopLSN < physical.startLSN || physical.walSegmentSize == 0 || physical.walSegmentSize & (physical.walSegmentSize - 1) != 0 {
            throw BackstopAPIError(field: "physical", problem: "stops before it starts, or has a WAL segment size that is not a power of two",
                                   fix: "the manifest is damaged; restore from another backup")
        }
        if let namespaceObjects {
            try Self.check(namespaceObjects.object, field: "namespaceObjects.object")
            try Self.checkSHA256(namespaceObjects.plaintext.sha256, field: "namespaceObjects.plaintext.sha256")
            guard encryption != nil, !objects.contains(where: { $0.name == namespaceObjects.object.name }) else {
                throw BackstopAPIError(field: "namespaceObjects", problem: "stored unencrypted, or under the dump's name",
                                       fix: "the manifest is damaged; restore from another backup")
            }
        }
        if let previous = previousManifestSHA256 {
            try Self.checkSHA256(previous, field: "previousManifestSHA256")
        }
        guard compression.algorithm.levels.contains(compression.level) else {
            throw BackstopAPIError(
                field: "compression.level",
                problem: "\(compression.level) is outside \(compression.algorithm.rawValue)'s \(compression.algorithm.levels)",
                fix: "the manifest is damaged; restore from another backup")
        }
        if let encryption {
            guard encryption.chunkSize > 0, !encryption.keyFingerprint.isEmpty else {
                throw BackstopAPIError(field: "encryption", problem: "chunkSize and keyFingerprint are required",
                                       fix: "the manifest is damaged; restore from another backup")
            }
        }
    }

    static func check(_ object: StoredObject, field path: String) throws(BackstopAPIError) {
        guard !object.name.isEmpty, !object.name.contains("/") else {
            throw BackstopAPIError(field: "\(path).name", problem: "\"\(object.name)\" is not a file name",
                                   fix: "the manifest is damaged; restore from another backup")
        }
        try Self.checkSHA256(object.sha256, field: "\(path).sha256")
        guard object.size >= 0, object.blockSize > 0 else {
            throw BackstopAPIError(field: "\(path).blockSize", problem: "size and block size must be positive",
                                   fix: "the manifest is damaged; restore from another backup")
        }
        let expectedBlocks = object.size == 0 ? 0 : Int((object.size - 1) / Int64(object.blockSize)) + 1
        guard object.blockSHA256.count == expectedBlocks else {
            throw BackstopAPIError(
                field: "\(path).blockSHA256",
                problem: "\(object.blockSHA256.count) block hashes for \(object.size) bytes in blocks of \(object.blockSize) (expected \(expectedBlocks))",
                fix: "the manifest is damaged; restore from another backup")
        }
        for (block, hash) in object.blockSHA256.enumerated() {
            try Self.checkSHA256(hash, field: "\(path).blockSHA256[\(block)]")
        }
    }

    static func checkSHA256(_ value: String, field: String) throws(BackstopAPIError) {
        let isHex = value.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
        guard value.utf8.count == 64, isHex else {
            throw BackstopAPIError(field: field, problem: "\"\(value)\" is not a lowercase hex SHA-256",
                                   fix: "the manifest is damaged; restore from another backup")
        }
    }
}

extension BackstopAPIError {
    /// Turns a decoder's error into one that names the JSON path and says, in words, what was
    /// expected: no Swift type names, no decoder internals.
    public init(decoding error: DecodingError, document: String) {
        func path(_ codingPath: [any CodingKey], appending key: (any CodingKey)? = nil) -> String {
            let keys = codingPath + (key.map { [$0] } ?? [])
            var text = ""
            for key in keys {
                if let index = key.intValue {
                    text += "[\(index)]"
                } else {
                    text += (text.isEmpty ? "" : ".") + key.stringValue
                }
            }
            return text.isEmpty ? document : text
        }
        let fix = "the \(document) is damaged or from an incompatible version"
        switch error {
        case .keyNotFound(let key, let context):
            self.init(field: path(context.codingPath, appending: key), problem: "missing", fix: fix)
        case .valueNotFound(let type, let context):
            self.init(field: path(context.codingPath), problem: "null where \(Self.expectation(type)) is required", fix: fix)
        case .typeMismatch(let type, let context):
            self.init(field: path(context.codingPath), problem: "not \(Self.expectation(type))", fix: fix)
        case .dataCorrupted(let context):
            // The decoder's own words for unparsable input are replaced; a value's own check
            // (an id, a duration) already explains itself.
            let unparsable = context.underlyingError != nil || context.debugDescription.hasPrefix("The given data was not valid JSON")
            self.init(field: path(context.codingPath), problem: unparsable ? "is not valid JSON" : context.debugDescription, fix: fix)
        @unknown default:
            self.init(field: document, problem: "cannot be decoded", fix: fix)
        }
    }

    /// "a string", "a number" …: what a decoder expected, as a reader would say it.
    static func expectation(_ type: Any.Type) -> String {
        switch type {
        case is String.Type, is Substring.Type: "a string"
        case is Bool.Type: "true or false"
        case is Int.Type, is Int64.Type, is Int32.Type, is UInt64.Type, is UInt32.Type, is UInt16.Type, is UInt8.Type, is Double.Type, is Float.Type:
            "a number"
        default:
            String(describing: type).hasPrefix("Array") ? "a list"
                : String(describing: type).hasPrefix("Dictionary") ? "an object" : "a value of the right kind"
        }
    }
}
