import BlockingCalls
import Foundation
import HTTP
import Testing

/// A real TLS server that demands a client certificate (Python's ssl module), with a CA,
/// server and client certificates made by openssl: what kubeconfig's `*-data` and file
/// fields feed libcurl.
@Suite("HTTP over mutual TLS")
struct MutualTLSTests {
    final class Server: Sendable {
        let folder: String
        let port: Int
        let process: Process

        init() throws {
            folder = FileManager.default.temporaryDirectory.appendingPathComponent("backstop-mtls-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let script = """
                set -e
                cd "$1"
                openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=test CA" -keyout ca.key -out ca.pem 2>/dev/null
                for who in server client; do
                  openssl req -newkey rsa:2048 -nodes -subj "/CN=backstop-$who" -keyout $who.key -out $who.csr 2>/dev/null
                  printf 'subjectAltName=IP:127.0.0.1\\n' > $who.ext
                  openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile $who.ext -out $who.pem 2>/dev/null
                done
                """
            let make = Process()
            make.executableURL = URL(fileURLWithPath: "/bin/bash")
            make.arguments = ["-c", script, "make-certificates", folder]
            try make.run()
            make.waitUntilExit()
            guard make.terminationStatus == 0 else { throw TestError(description: "openssl could not make the certificates") }

            let server = """
                import http.server, ssl, sys
                class Handler(http.server.BaseHTTPRequestHandler):
                    def do_GET(self):
                        subject = dict(x[0] for x in self.connection.getpeercert()["subject"])
                        body = subject["commonName"].encode()
                        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
                    def log_message(self, *args): pass
                httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(sys.argv[1] + "/server.pem", sys.argv[1] + "/server.key")
                context.load_verify_locations(sys.argv[1] + "/ca.pem")
                context.verify_mode = ssl.CERT_REQUIRED
                httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
                print(httpd.server_address[1], flush=True)
                httpd.serve_forever()
                """
            process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", "-c", server, folder]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            let line = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
            guard let port = Int(line.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                process.terminate()
                throw TestError(description: "the TLS server did not start: \(line)")
            }
            self.port = port
        }

        func text(_ name: String) throws -> String { try String(contentsOfFile: folder + "/" + name, encoding: .utf8) }

        func stop() {
            process.terminate()
            try? FileManager.default.removeItem(atPath: folder)
        }
    }

    struct TestError: Error, CustomStringConvertible { let description: String }

    @Test("client certificate and CA as PEM text or files; refused without a certificate or the CA")
    func mutualTLS() async throws {
        let server = try await runBlocking(name: "tls-server") { try Server() }
        defer { server.stop() }
        let url = "https://127.0.0.1:\(server.port)/"

        var fromData = HTTPClient.Configuration()
        fromData.caPEM = try server.text("ca.pem")
        fromData.clientCertificate = .pem(try server.text("client.pem"))
        fromData.clientKey = .pem(try server.text("client.key"))
        let answer = try await HTTPClient(configuration: fromData).send(HTTPRequest(method: "GET", url: url))
        #expect(answer.status == 200 && answer.bodyText == "backstop-client")

        var fromFiles = HTTPClient.Configuration(caFile: server.folder + "/ca.pem")
        fromFiles.clientCertificate = .file(server.folder + "/client.pem")
        fromFiles.clientKey = .file(server.folder + "/client.key")
        #expect(try await HTTPClient(configuration: fromFiles).send(HTTPRequest(method: "GET", url: url)).bodyText == "backstop-client")

        var withoutCertificate = HTTPClient.Configuration()
        withoutCertificate.caPEM = try server.text("ca.pem")
        await #expect(throws: HTTPError.self, "the server demands a client certificate") {
            try await HTTPClient(configuration: withoutCertificate).send(HTTPRequest(method: "GET", url: url))
        }
        var withoutCA = HTTPClient.Configuration()
        withoutCA.clientCertificate = .pem(try server.text("client.pem"))
        withoutCA.clientKey = .pem(try server.text("client.key"))
        do {
            _ = try await HTTPClient(configuration: withoutCA).send(HTTPRequest(method: "GET", url: url))
            Issue.record("a server certificate from an unknown CA was trusted")
        } catch {
            #expect(error.kind == .tls)
        }
    }
}
