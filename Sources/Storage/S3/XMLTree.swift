/// Just enough XML for S3's and STS's answers: elements, text, entities, CDATA; attributes,
/// namespaces and comments are skipped. Their documents are small and machine-written.
struct XMLElement: Sendable {
    let name: String
    var children: [XMLElement] = []
    var text = ""

    /// The first child called `name`.
    func child(_ name: String) -> XMLElement? { children.first { $0.name == name } }

    func children(_ name: String) -> [XMLElement] { children.filter { $0.name == name } }

    /// The text of the first child called `name`.
    subscript(_ name: String) -> String? { child(name)?.text }

    /// Parses a document; `nil` when it is not well-formed enough to read.
    static func parse(_ bytes: [UInt8]) -> XMLElement? {
        var parser = Parser(bytes: bytes)
        return parser.document()
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        mutating func document() -> XMLElement? {
            var stack: [XMLElement] = []
            var root: XMLElement?
            while index < bytes.count {
                if bytes[index] == UInt8(ascii: "<") {
                    if starts(with: "<?") || starts(with: "<!--") || starts(with: "<!DOCTYPE") {
                        guard skip(past: starts(with: "<!--") ? "-->" : ">") else { return nil }
                    } else if starts(with: "<![CDATA[") {
                        index += 9
                        let start = index
                        guard skip(past: "]]>") else { return nil }
                        if !stack.isEmpty { stack[stack.count - 1].text += String(decoding: bytes[start..<(index - 3)], as: UTF8.self) }
                    } else if starts(with: "</") {
                        guard let end = bytes[index...].firstIndex(of: UInt8(ascii: ">")), let closed = stack.popLast() else { return nil }
                        index = end + 1
                        if stack.isEmpty { root = closed } else { stack[stack.count - 1].children.append(closed) }
                    } else {
                        guard let tag = startTag() else { return nil }
                        let element = XMLElement(name: tag.name)
                        if tag.selfClosing {
                            if stack.isEmpty { root = element } else { stack[stack.count - 1].children.append(element) }
                        } else {
                            stack.append(element)
                        }
                    }
                } else {
                    let start = index
                    while index < bytes.count && bytes[index] != UInt8(ascii: "<") { index += 1 }
                    if !stack.isEmpty { stack[stack.count - 1].text += Self.unescape(bytes[start..<index]) }
                }
            }
            return stack.isEmpty ? root : nil
        }

        private func starts(with prefix: String) -> Bool {
            let prefix = Array(prefix.utf8)
            return bytes.count - index >= prefix.count && Array(bytes[index..<(index + prefix.count)]) == prefix
        }

        private mutating func skip(past terminator: String) -> Bool {
            let terminator = Array(terminator.utf8)
            while index + terminator.count <= bytes.count {
                if Array(bytes[index..<(index + terminator.count)]) == terminator {
                    index += terminator.count
                    return true
                }
                index += 1
            }
            return false
        }

        /// `<name attr="…" …>` or `<name …/>`; quoted attribute values may contain `>`.
        private mutating func startTag() -> (name: String, selfClosing: Bool)? {
            index += 1
            let nameStart = index
            while index < bytes.count, !Self.isNameEnd(bytes[index]) { index += 1 }
            var name = String(decoding: bytes[nameStart..<index], as: UTF8.self)
            if let colon = name.firstIndex(of: ":") { name = String(name[name.index(after: colon)...]) }
            var quote: UInt8?
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                if let open = quote {
                    if byte == open { quote = nil }
                } else if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'") {
                    quote = byte
                } else if byte == UInt8(ascii: ">") {
                    return name.isEmpty ? nil : (name, bytes[index - 2] == UInt8(ascii: "/"))
                }
            }
            return nil
        }

        private static func isNameEnd(_ byte: UInt8) -> Bool {
            byte == UInt8(ascii: " ") || byte == UInt8(ascii: ">") || byte == UInt8(ascii: "/")
                || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
        }

        static func unescape(_ raw: ArraySlice<UInt8>) -> String {
            let text = String(decoding: raw, as: UTF8.self)
            guard text.contains("&") else { return text }
            var output = ""
            var rest = Substring(text)
            while let amp = rest.firstIndex(of: "&") {
                output += rest[..<amp]
                guard let semicolon = rest[amp...].firstIndex(of: ";") else { break }
                let entity = rest[rest.index(after: amp)..<semicolon]
                switch entity {
                case "amp": output += "&"
                case "lt": output += "<"
                case "gt": output += ">"
                case "quot": output += "\""
                case "apos": output += "'"
                default:
                    let number = entity.hasPrefix("#x") ? UInt32(entity.dropFirst(2), radix: 16)
                        : entity.hasPrefix("#") ? UInt32(entity.dropFirst(), radix: 10) : nil
                    if let number, let scalar = Unicode.Scalar(number) { output.unicodeScalars.append(scalar) }
                    else { output += "&\(entity);" }
                }
                rest = rest[rest.index(after: semicolon)...]
            }
            return output + rest
        }
    }
}

enum XMLText {
    /// Escapes text for an element's content (keys in DeleteObjects).
    static func escape(_ text: String) -> String {
        var output = ""
        for character in text {
            switch character {
            case "&": output += "&amp;"
            case "<": output += "&lt;"
            case ">": output += "&gt;"
            case "\"": output += "&quot;"
            case "'": output += "&apos;"
            default: output.append(character)
            }
        }
        return output
    }
}
