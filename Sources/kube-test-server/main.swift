import Foundation
import KubeTestServer

// Runs the test API server until killed, for hack/ scripts and `kubectl --server`:
//   kube-test-server [token|--anonymous]   → prints "http://127.0.0.1:PORT TOKEN" on one line
// kubectl sends no bearer token over plain http, so kubectl sessions use --anonymous.
let argument = CommandLine.arguments.dropFirst().first ?? "test-token"
let anonymous = argument == "--anonymous"
let token = anonymous ? "none" : argument
do {
    let server = try TestAPIServer(token: token, allowAnonymous: anonymous)
    // Unbuffered, so a script reading the line is not left waiting.
    FileHandle.standardOutput.write(Data("\(server.url) \(token)\n".utf8))
    while true { sleep(3600) }
} catch {
    FileHandle.standardError.write(Data("kube-test-server: \(error)\n".utf8))
    exit(1)
}
