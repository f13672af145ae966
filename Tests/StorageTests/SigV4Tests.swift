import Foundation
import HTTP
@testable import Storage
import TestSupport
import Testing

@Suite("SigV4 signer")
struct SigV4Tests {
    /// The example requests of AWS's "Signature Calculations for the Authorization Header:
    /// Transferring Payload in a Single Chunk" (S3 API reference), with their published signatures.
    static let example = S3Credentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    static let exampleDate = Date(timeIntervalSince1970: 1_369_353_600)  // 2013-05-24T00:00:00Z

    func signature(_ method: String, path: String, query: [(String, String)] = [], headers: [HTTPHeader] = [],
                   body: [UInt8] = []) -> String? {
        let signer = SigV4Signer(region: "us-east-1")
        let request = SigV4Signer.Request(
            method: method, path: path, query: query.map { (PercentEncoding.encode($0.0), PercentEncoding.encode($0.1)) },
            headers: [HTTPHeader("Host", "examplebucket.s3.amazonaws.com")] + headers,
            payloadHash: Digests.sha256(body).hexString)
        let added = signer.signatureHeaders(for: request, credentials: Self.example, at: Self.exampleDate)
        return added.first { $0.name == "Authorization" }?.value.components(separatedBy: "Signature=").last
    }

    @Test("AWS example: GET object with a range")
    func getObject() {
        #expect(signature("GET", path: "/test.txt", headers: [HTTPHeader("Range", "bytes=0-9")])
                == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test("AWS example: PUT object with a storage class and a Date header")
    func putObject() {
        #expect(signature("PUT", path: "/" + PercentEncoding.encode("test$file.text", keepingSlashes: true),
                          headers: [HTTPHeader("Date", "Fri, 24 May 2013 00:00:00 GMT"),
                                    HTTPHeader("x-amz-storage-class", "REDUCED_REDUNDANCY")],
                          body: Array("Welcome to Amazon S3.".utf8))
                == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
    }

    @Test("AWS example: GET bucket lifecycle (a query parameter without value)")
    func getLifecycle() {
        #expect(signature("GET", path: "/", query: [("lifecycle", "")])
                == "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")
    }

    @Test("AWS example: list objects (query parameters sorted)")
    func listObjects() {
        #expect(signature("GET", path: "/", query: [("prefix", "J"), ("max-keys", "2")])
                == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    }

    @Test("the Authorization header names the scope and the signed headers")
    func authorizationLayout() throws {
        let signer = SigV4Signer(region: "eu-west-1")
        let credentials = S3Credentials(accessKeyID: "AKID", secretAccessKey: "secret", sessionToken: "token")
        let added = signer.signatureHeaders(
            for: .init(method: "GET", path: "/k", query: [], headers: [HTTPHeader("host", "b.example")], payloadHash: SigV4Signer.unsignedPayload),
            credentials: credentials, at: Self.exampleDate)
        #expect(added.map(\.name) == ["x-amz-date", "x-amz-content-sha256", "x-amz-security-token", "Authorization"])
        let authorization = try #require(added.last?.value)
        #expect(authorization.hasPrefix("AWS4-HMAC-SHA256 Credential=AKID/20130524/eu-west-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature="))
        #expect(!authorization.contains("secret"))
    }

    /// botocore is the reference implementation: 1,000 generated requests (every character
    /// class in keys and query values, extra headers, empty and non-empty payloads, unsigned
    /// payloads, session tokens) must get byte-identical Authorization headers.
    @Test("byte-identical to botocore over 1,000 generated requests")
    func botocoreOracle() async throws {
        let cases = try await OracleCases.load(count: 1000, seed: 7)
        #expect(cases.count == 1000)
        let signer = SigV4Signer(region: "eu-central-1")
        let date = Date(timeIntervalSince1970: 1_795_309_323)  // 2026-11-22T01:02:03Z, the oracle's clock
        var mismatches = 0
        for item in cases {
            let credentials = S3Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                            sessionToken: item.token)
            let body = [UInt8](hex: item.body)
            let request = SigV4Signer.Request(
                method: item.method, path: "/" + PercentEncoding.encode(item.key, keepingSlashes: true),
                query: item.query.map { (PercentEncoding.encode($0[0]), PercentEncoding.encode($0[1])) },
                headers: [HTTPHeader("host", "backstop-oracle.s3.eu-central-1.amazonaws.com")] + item.headers.map { HTTPHeader($0[0], $0[1]) },
                payloadHash: item.unsigned ? SigV4Signer.unsignedPayload : Digests.sha256(body).hexString)
            let ours = signer.signatureHeaders(for: request, credentials: credentials, at: date).last?.value
            if ours != item.authorization {
                mismatches += 1
                if mismatches <= 3 {
                    Issue.record("differs from botocore for \(item.method) key \(item.key.debugDescription) query \(item.query) headers \(item.headers): \(ours ?? "-") vs \(item.authorization)")
                }
            }
        }
        #expect(mismatches == 0)
    }
}

/// Requests signed by `hack/sigv4-oracle.py` (botocore).
struct OracleCases: Decodable {
    let method: String
    let key: String
    let query: [[String]]
    let headers: [[String]]
    let body: String
    let unsigned: Bool
    let token: String?
    let authorization: String

    static func load(count: Int, seed: Int) async throws -> [OracleCases] {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("hack/sigv4-oracle.py").path
        // Python runs for a second or two: on a thread of its own, not the cooperative pool.
        let result = try await ToolProcess.run("python3", [script, "\(count)", "\(seed)"])
        guard result.status == 0 else {
            throw OracleUnavailable(message: "hack/sigv4-oracle.py failed (is botocore installed? hack/install-deps.sh installs it): \(result.errors)")
        }
        return try Data(result.output.utf8).split(separator: UInt8(ascii: "\n")).map { try JSONDecoder().decode(OracleCases.self, from: Data($0)) }
    }
}

struct OracleUnavailable: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

extension [UInt8] {
    init(hex: String) {
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        self = bytes
    }
}
