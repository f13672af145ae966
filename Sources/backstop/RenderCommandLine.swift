import ArgumentParser
import BackstopAPI
import Engine
import Foundation
import Workloads
import YAML

/// `backstop render -f policy.yaml`: the CronJobs the controller would create, without a cluster.
struct RenderCommandLine: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "render",
        abstract: "Print the CronJobs the controller would create for a BackupPolicy (no cluster needed).",
        discussion: """
            Example:
              backstop render -f k8s/examples/backuppolicy.yaml | kubectl apply --dry-run=client -f -
            Prints one JSON `List`; kubectl reads it like YAML.
            """)

    @Option(name: [.customShort("f"), .customLong("filename")], help: "The BackupPolicy YAML (or JSON) file; - reads stdin.")
    var file: String

    @Option(help: "Worker image when the policy names none.")
    var image = "ghcr.io/backstop/backstop:\(WorkerContext.toolVersion)"

    func run() throws {
        let text: String
        if file == "-" {
            text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        } else {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ValidationError("-f \(file): cannot read the file")
            }
            text = String(decoding: data, as: UTF8.self)
        }
        let cronJobs: [CronJob]
        do {
            let policy = try YAMLDecoder().decode(BackupPolicy.self, from: text, source: file)
            cronJobs = try CronJobBuilder(settings: .init(workerImage: image)).cronJobs(for: policy)
        } catch let error as YAMLError {
            throw ValidationError(error.description)
        } catch let error as BackstopAPIError {
            throw ValidationError("\(file): \(error.description)")
        }
        struct List: Encodable {
            let apiVersion = "v1"
            let kind = "List"
            let items: [CronJob]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(List(items: cronJobs)), as: UTF8.self))
    }
}
