import Foundation
import KubeTestServer

// Runs the test API server until killed, for hack/ scripts and `kubectl --server`:
//   kube-test-server [token|--anonymous] [--run-jobs-with PATH]
// prints "http://127.0.0.1:PORT TOKEN" on one line. kubectl sends no bearer token over plain
// http, so kubectl sessions use --anonymous. With --run-jobs-with, every Job's pod runs the
// local executable PATH (the worker image's entrypoint, e.g. .build/debug/backstop) with the
// container's args, env and Secrets; `kubectl logs` shows its output.
var arguments = Array(CommandLine.arguments.dropFirst())
var worker: String?
if let flag = arguments.firstIndex(of: "--run-jobs-with") {
    guard flag + 1 < arguments.count else {
        FileHandle.standardError.write(Data("kube-test-server: --run-jobs-with needs the path of the worker binary\n".utf8))
        exit(64)
    }
    worker = arguments[flag + 1]
    arguments.removeSubrange(flag...flag + 1)
}
let argument = arguments.first ?? "test-token"
let anonymous = argument == "--anonymous"
let token = anonymous ? "none" : argument
do {
    let server = try TestAPIServer(token: token, allowAnonymous: anonymous)
    if let worker { server.setJobRunner(.worker(binary: worker)) }
    // Unbuffered, so a script reading the line is not left waiting.
    FileHandle.standardOutput.write(Data("\(server.url) \(token)\n".utf8))
    while true { sleep(3600) }
} catch {
    FileHandle.standardError.write(Data("kube-test-server: \(error)\n".utf8))
    exit(1)
}
