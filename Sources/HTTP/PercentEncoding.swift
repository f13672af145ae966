/// Percent-encoding of URI components as RFC 3986 and SigV4 want it: every byte but the
/// unreserved `A-Z a-z 0-9 - . _ ~` becomes `%XX` (upper-case hex); in paths `/` may stay.
/// One encoder for the Kubernetes client's queries and S3's paths, queries and signatures.
/// Byte by byte: every request has a query, and building a `CharacterSet` (or formatting a
/// string) per byte was a visible part of the controller's time.
public enum PercentEncoding {
    public static func encode(_ text: String, keepingSlashes: Bool = false) -> String {
        func kept(_ byte: UInt8) -> Bool {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"): true
            case UInt8(ascii: "/"): keepingSlashes
            default: false
            }
        }
        guard !text.utf8.allSatisfy(kept) else { return text }
        let hex = Array("0123456789ABCDEF".utf8)
        var encoded: [UInt8] = []
        encoded.reserveCapacity(text.utf8.count * 3)
        for byte in text.utf8 {
            if kept(byte) {
                encoded.append(byte)
            } else {
                encoded += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: encoded, as: UTF8.self)
    }
}
