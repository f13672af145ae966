import ArgumentParser
import BackstopAPI
import Engine
import Foundation
import Workloads

/// `backstop render -f policy.yaml`: the CronJobs the controller would create, without a cluster.
struct RenderCommandLine: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "render",
        abstract: "Print the CronJobs the controller would create for BackupPolicies (no cluster needed).",
        discussion: """
            Examples:
              backstop render -f k8s/examples/backuppolicy.yaml \\
                | kubectl apply --dry-run=client -f -
              kubectl get bp orders -o yaml | backstop render -f - -o yaml
            Reads every document of the file (or a List); prints one List.
            """)

    @Option(name: [.customShort("f"), .customLong("filename")], help: "BackupPolicy YAML or JSON file; - reads stdin.")
    var file: String

    @Option(name: [.customShort("o"), .customLong(WorkerOption.output.flag)], help: "json or yaml (default json).")
    var output: String?

    @Option(help: "Worker image when the policy names none.")
    var image = "ghcr.io/backstop/backstop:\(WorkerContext.toolVersion)"

    func run() throws {
        guard let format = OutputFormat(rawValue: output ?? "json"), format != .text else {
            throw CommandLineError.usage("--output \(output ?? ""): render prints a List of CronJobs; use -o json or -o yaml")
        }
        var cronJobs: [CronJob] = []
        for document in try PolicyFile.read(file) {
            do { cronJobs += try CronJobBuilder(settings: .init(workerImage: image)).cronJobs(for: document.policy) }
            catch { throw CommandLineError.usage("\(document.source): \(error.description)") }
        }
        struct List: Encodable {
            let apiVersion = "v1"
            let kind = "List"
            let items: [CronJob]
        }
        try format.print(List(items: cronJobs))
    }
}

/// `backstop completion bash|zsh|fish`.
struct CompletionCommandLine: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "completion",
        abstract: "Print the shell completion script for bash, zsh or fish.",
        discussion: """
            Examples:
              source <(backstop completion bash)                # this bash session
              backstop completion bash > /etc/bash_completion.d/backstop
              backstop completion zsh > "${fpath[1]}/_backstop"
              backstop completion fish > ~/.config/fish/completions/backstop.fish
            """)

    @Argument(help: "bash, zsh or fish.")
    var shell: String

    func run() throws {
        guard let completion = CompletionShell(rawValue: shell) else {
            throw CommandLineError.usage("no completion for the shell \(shell); use bash, zsh or fish")
        }
        print(Backstop.completionScript(for: completion))
    }
}
