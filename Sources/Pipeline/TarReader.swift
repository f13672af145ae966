/// One member of a tar archive, as its header (and any pax or GNU long-name header before
/// it) describes it.
public struct TarEntry: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case file
        case directory
        case symbolicLink(target: String)
        /// Hard links, devices, FIFOs: pg_basebackup writes none; a reader refuses or skips them.
        case other(typeFlag: UInt8)
    }

    public let path: String
    public let kind: Kind
    public let size: Int64
    /// Permission bits (`0o700`, `0o600` in a base backup).
    public let mode: UInt32
}

/// Receives a tar stream's members in order; `data` is called for a file's contents, in pieces.
public protocol TarEntryHandler: AnyObject {
    func begin(_ entry: TarEntry) throws
    func data(_ bytes: UnsafeRawBufferPointer) throws
    func end(_ entry: TarEntry) throws
}

/// Reads a ustar/pax stream as it passes, without buffering more than one header: what
/// pg_basebackup writes (ustar, base-256 sizes past 8 GiB) plus pax and GNU long names, so an
/// archive from another writer reads as well. Two zero blocks end the archive; bytes that do
/// not start a header, or an archive that stops inside a member, are errors.
public final class TarReader {
    private enum State {
        case header
        case contents(TarEntry, remaining: Int64)
        /// A pax (`x`) or GNU long-name (`L`, `K`) header's data, which describes the next member.
        case extended(type: UInt8, remaining: Int64, collected: [UInt8])
        case padding(remaining: Int)
        case ended
    }

    private static let blockSize = 512
    private let handler: any TarEntryHandler
    private var state = State.header
    private var header: [UInt8] = []
    private var zeroBlocks = 0
    private var pendingPath: String?
    private var pendingLinkTarget: String?
    private var pendingSize: Int64?
    public private(set) var entryCount = 0

    public init(handler: any TarEntryHandler) {
        self.handler = handler
        header.reserveCapacity(Self.blockSize)
    }

    /// True once the end-of-archive marker was read.
    public var reachedEnd: Bool {
        if case .ended = state { return true }
        return false
    }

    public func process(_ input: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < input.count {
            switch state {
            case .header:
                let take = min(Self.blockSize - header.count, input.count - offset)
                header.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[offset..<(offset + take)]))
                offset += take
                if header.count == Self.blockSize {
                    try readHeader()
                    header.removeAll(keepingCapacity: true)
                }
            case .contents(let entry, let remaining):
                let take = Int(min(Int64(input.count - offset), remaining))
                try handler.data(UnsafeRawBufferPointer(rebasing: input[offset..<(offset + take)]))
                offset += take
                if remaining - Int64(take) == 0 {
                    try handler.end(entry)
                    state = Self.afterData(of: entry.size)
                } else {
                    state = .contents(entry, remaining: remaining - Int64(take))
                }
            case .extended(let type, let remaining, var collected):
                let take = Int(min(Int64(input.count - offset), remaining))
                collected.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[offset..<(offset + take)]))
                offset += take
                if remaining - Int64(take) == 0 {
                    try applyExtended(type: type, collected)
                    state = Self.afterData(of: Int64(collected.count))
                } else {
                    state = .extended(type: type, remaining: remaining - Int64(take), collected: collected)
                }
            case .padding(let remaining):
                let take = min(input.count - offset, remaining)
                offset += take
                state = remaining == take ? .header : .padding(remaining: remaining - take)
            case .ended:
                // Writers pad the archive to a record size with zeros; anything else is not tar.
                guard UnsafeRawBufferPointer(rebasing: input[offset...]).allSatisfy({ $0 == 0 }) else {
                    throw PipelineError(.trailingData, "data follows the tar archive's end marker")
                }
                return
            }
        }
    }

    /// Checks that the archive ended where a tar archive may end.
    public func finish() throws {
        switch state {
        case .ended: return
        case .header where header.isEmpty && zeroBlocks == 1:
            return  // one zero block: some writers stop there, and no member is cut short
        default:
            throw PipelineError(.truncated, "the tar archive ends early (after \(entryCount) members, inside \(Self.describe(state))): the backup is incomplete")
        }
    }

    private static func afterData(of size: Int64) -> State {
        let padding = Int((Int64(blockSize) - size % Int64(blockSize)) % Int64(blockSize))
        return padding == 0 ? .header : .padding(remaining: padding)
    }

    private static func describe(_ state: State) -> String {
        switch state {
        case .header: "a header"
        case .contents(let entry, _): entry.path
        case .extended: "an extended header"
        case .padding: "padding"
        case .ended: "the end marker"
        }
    }

    private func readHeader() throws {
        if header.allSatisfy({ $0 == 0 }) {
            zeroBlocks += 1
            if zeroBlocks == 2 { state = .ended }
            return
        }
        guard zeroBlocks == 0 else { throw PipelineError(.invalidArchive, "a member follows a zero block in the tar archive") }
        try checkSum()
        let type = header[156]
        let size = try Self.number(header[124..<136], field: "size")
        guard size >= 0 else { throw PipelineError(.invalidArchive, "a tar header gives a negative size") }
        switch type {
        case UInt8(ascii: "x"), UInt8(ascii: "L"), UInt8(ascii: "K"):
            guard size <= 1 << 20 else { throw PipelineError(.invalidArchive, "a tar extended header of \(size) bytes is too long") }
            state = size == 0 ? .header : .extended(type: type, remaining: size, collected: [])
            return
        case UInt8(ascii: "g"):
            // Global pax settings: nothing read here depends on them.
            let skipped = size + (Int64(Self.blockSize) - size % Int64(Self.blockSize)) % Int64(Self.blockSize)
            state = skipped == 0 ? .header : .padding(remaining: Int(skipped))
            return
        default: break
        }
        let path = pendingPath ?? Self.headerPath(header)
        let kind: TarEntry.Kind
        switch type {
        case UInt8(ascii: "0"), 0, UInt8(ascii: "7"): kind = .file
        case UInt8(ascii: "5"): kind = .directory
        case UInt8(ascii: "2"): kind = .symbolicLink(target: pendingLinkTarget ?? Self.string(header[157..<257]))
        default: kind = .other(typeFlag: type)
        }
        let pendingSizeOverride = pendingSize
        pendingPath = nil
        pendingLinkTarget = nil
        pendingSize = nil
        guard !path.isEmpty else { throw PipelineError(.invalidArchive, "a tar member has no name") }
        let mode = UInt32(truncatingIfNeeded: try Self.number(header[100..<108], field: "mode"))
        // Directories and links carry no data whatever their size field says.
        let dataSize: Int64
        switch kind {
        case .file, .other: dataSize = pendingSizeOverride ?? size
        case .directory, .symbolicLink: dataSize = 0
        }
        let entry = TarEntry(path: path, kind: kind, size: dataSize, mode: mode & 0o7777)
        entryCount += 1
        try handler.begin(entry)
        if dataSize == 0 {
            try handler.end(entry)
            state = .header
        } else {
            state = .contents(entry, remaining: dataSize)
        }
    }

    private func checkSum() throws {
        let recorded = try Self.number(header[148..<156], field: "checksum")
        var sum: Int64 = 0
        for (index, byte) in header.enumerated() {
            sum += (148..<156).contains(index) ? 0x20 : Int64(byte)
        }
        guard sum == recorded else {
            throw PipelineError(.invalidArchive, "a tar header's checksum does not match (after \(entryCount) members): the stream is not a tar archive or is damaged")
        }
    }

    private func applyExtended(type: UInt8, _ bytes: [UInt8]) throws {
        switch type {
        case UInt8(ascii: "L"): pendingPath = Self.string(bytes[...])
        case UInt8(ascii: "K"): pendingLinkTarget = Self.string(bytes[...])
        default:
            // pax records: "<length> <key>=<value>\n", the length counting the whole record.
            var index = 0
            while index < bytes.count {
                guard let space = bytes[index...].firstIndex(of: 0x20),
                      let length = Int(String(decoding: bytes[index..<space], as: UTF8.self)), length > 0,
                      index + length <= bytes.count else {
                    throw PipelineError(.invalidArchive, "a pax header record is malformed")
                }
                let record = bytes[(space + 1)..<(index + length - 1)]
                if let equals = record.firstIndex(of: UInt8(ascii: "=")) {
                    let key = String(decoding: record[record.startIndex..<equals], as: UTF8.self)
                    let value = String(decoding: record[(equals + 1)...], as: UTF8.self)
                    switch key {
                    case "path": pendingPath = value
                    case "linkpath": pendingLinkTarget = value
                    case "size": pendingSize = Int64(value)
                    default: break
                    }
                }
                index += length
            }
        }
    }

    /// ustar splits long names into `prefix/name`.
    private static func headerPath(_ header: [UInt8]) -> String {
        let name = string(header[0..<100])
        let isUstar = header[257..<262].elementsEqual("ustar".utf8)
        let prefix = isUstar ? string(header[345..<500]) : ""
        return prefix.isEmpty ? name : prefix + "/" + name
    }

    private static func string(_ bytes: ArraySlice<UInt8>) -> String {
        let end = bytes.firstIndex(of: 0) ?? bytes.endIndex
        return String(decoding: bytes[bytes.startIndex..<end], as: UTF8.self)
    }

    /// Octal digits (NUL or space terminated), or base-256 when the first byte's high bit is set
    /// (GNU's encoding for sizes of 8 GiB and more, which pg_basebackup uses too).
    private static func number(_ field: ArraySlice<UInt8>, field name: String) throws -> Int64 {
        if let first = field.first, first & 0x80 != 0 {
            var value: Int64 = Int64(first & 0x7F)
            for byte in field.dropFirst() {
                guard value < Int64.max >> 8 else { throw PipelineError(.invalidArchive, "a tar header's \(name) is too large") }
                value = value << 8 | Int64(byte)
            }
            return value
        }
        var value: Int64 = 0
        var seenDigit = false
        for byte in field {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                value = value * 8 + Int64(byte - UInt8(ascii: "0"))
                seenDigit = true
            case 0, UInt8(ascii: " "):
                if seenDigit { return value }
            default:
                throw PipelineError(.invalidArchive, "a tar header's \(name) field is not a number: the stream is not a tar archive or is damaged")
            }
        }
        return value
    }
}
