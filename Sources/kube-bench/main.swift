import Foundation
import KubeClient
import KubeObjects
import KubeRuntime

// List+watch into the informer store, against a running API server (hack/bench.sh starts
// kube-test-server): time until the store is synced, and store memory per object.
//   kube-bench URL TOKEN [count]
//   kube-bench URL TOKEN controller N BACKSTOP_CONTROLLER CRD.json…   (cold start of the controller)
let arguments = Array(CommandLine.arguments.dropFirst())
guard arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: kube-bench URL TOKEN [count]\n".utf8))
    exit(64)
}
if arguments.count >= 6, arguments[2] == "controller" {
    // kube-bench URL TOKEN controller N BINARY CRD.json…
    try await ControllerBench.run(url: arguments[0], token: arguments[1], policies: Int(arguments[3]) ?? 1_000,
                                  binary: arguments[4], crds: Array(arguments[5...]))
    exit(0)
}
let count = arguments.count > 2 ? Int(arguments[2]) ?? 3_000 : 3_000

/// Resident memory of this process, from /proc/self/statm.
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
          let pages = text.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

let client = try KubeClient(connection: KubeConnection(server: arguments[0], namespace: "bench", token: .fixed(arguments[1])))
// About 1 KiB per object: labels, annotations and data, like a small Secret.
for index in 0..<count {
    let object = GenericObject(metadata: ObjectMeta(name: "object-\(index)", labels: ["app": "bench", "shard": "\(index % 16)"]),
                               fields: ["apiVersion": .string("v1"), "kind": .string("Secret"),
                                        "data": .object(["payload": .string(String(repeating: "QUJD", count: 200))])])
    _ = try? await client.create(.secrets, object)
}
let cache = ObjectCache<GenericObject>()
let before = residentBytes()
let started = ContinuousClock.now
let watcher = Watcher<GenericObject>(client: client, resource: .secrets, namespace: "bench")
let watching = Task { await watcher.run { event in cache.apply(event) } }
while !(cache.hasSynced && cache.count >= count) { try await Task.sleep(for: .milliseconds(5)) }
let synced = ContinuousClock.now - started
let after = residentBytes()
// A round of changes through the watch.
let changed = ContinuousClock.now
for index in 0..<min(count, 500) {
    _ = try await client.patch(.secrets, name: "object-\(index)", .merge(.object(["metadata": .object(["labels": .object(["touched": .string("yes")])])])),
                               as: GenericObject.self)
}
while cache.all.filter({ $0.metadata.labels?["touched"] == "yes" }).count < min(count, 500) { try await Task.sleep(for: .milliseconds(5)) }
let watched = ContinuousClock.now - changed
watching.cancel()
let seconds = { (duration: Duration) in duration / .seconds(1) }
print(String(format: "list+watch of %d objects: synced in %.2f s; store memory about %.1f KiB per object; %d changes seen through the watch in %.2f s",
             count, seconds(synced), Double(after - before) / 1024 / Double(count), min(count, 500), seconds(watched)))
