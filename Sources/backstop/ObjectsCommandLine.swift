import ArgumentParser
import BackstopAPI
import Engine
import BlockingCalls
import Foundation
import KubeClient
import KubeObjects
import YAML
#if canImport(Glibc)
import Glibc
#endif

/// `backup --secrets SELECTOR --config-maps SELECTOR`: what of the namespace a backup stores.
struct NamespaceObjectsOptions: ParsableArguments {
    @Option(name: .customLong(WorkerOption.secrets.flag),
            help: "Also store the namespace's Secrets with these labels, encrypted (e.g. app=shop; env \(WorkerOption.secrets.environmentVariable)).")
    var secrets: String?

    @Option(name: .customLong(WorkerOption.configMaps.flag),
            help: "Also store the namespace's ConfigMaps with these labels, encrypted (env \(WorkerOption.configMaps.environmentVariable)).")
    var configMaps: String?

    /// The source to read, or nil when no selector is given. The namespace is the backup's
    /// (`--namespace`); the API is reached through kubeconfig, else the pod's ServiceAccount.
    func source(namespace: String) throws(CommandLineError) -> NamespaceObjectsSource? {
        var selectors: [NamespaceObjects.Kind: String] = [:]
        for (kind, flag) in [(NamespaceObjects.Kind.secret, secrets), (.configMap, configMaps)] {
            guard let given = kind.workerOption.resolved(flag) else { continue }
            selectors[kind] = given.value
        }
        guard !selectors.isEmpty else { return nil }
        return NamespaceObjectsSource(client: try kubernetesClient(purpose: "--secrets and --config-maps read"), namespace: namespace, selectors: selectors)
    }
}

/// A client from kubeconfig (`KUBECONFIG`, `~/.kube/config`), else the pod's ServiceAccount.
func kubernetesClient(context: String? = nil, purpose: String) throws(CommandLineError) -> KubeClient {
    do { return try KubeClient(connection: KubeConnection.resolve(context: context)) }
    catch { throw .usage("\(purpose) through the Kubernetes API: \(error.message)") }
}

struct RestoreObjectsCommandLine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore-objects",
        abstract: "Put back the Secrets and ConfigMaps a backup stored (a dry run unless --apply).",
        discussion: """
            Example:
              backstop restore-objects latest --storage s3://backups/shop \\
                --namespace shop --policy orders --environment production \\
                --passphrase-file /secrets/passphrase --target-namespace shop-restored
            prints what would be created (or, with --overwrite, replaced): kinds and
            names, never values. --apply writes them through the Kubernetes API
            (kubeconfig, or the pod's ServiceAccount); an object that exists is kept
            unless --overwrite. -o yaml --output-file F writes them to F instead
            (created with mode 0600; never to a terminal), for kubectl apply -f F.
            ServiceAccount token Secrets and Helm release Secrets are skipped unless
            asked for. --namespace names the backups' namespace in the storage path.
            """)

    @Argument(help: "A backup id from `backstop list`, or latest.")
    var backup: String = "latest"

    @OptionGroup(title: "Restore") var storage: StorageOption
    @OptionGroup(title: "Restore") var scope: ScopeOptions
    @OptionGroup(title: "Restore") var encryption: EncryptionOptions

    @Option(help: "The namespace to restore into (default: the one backed up, --namespace).")
    var targetNamespace: String?

    @Flag(help: "Create the objects through the Kubernetes API (without it: a dry run).")
    var apply = false

    @Flag(help: "Replace objects that exist (with --apply, or to see it in the dry run).")
    var overwrite = false

    @Option(name: [.customShort("o"), .customLong("output")], help: "yaml: write the objects to --output-file instead of the API.")
    var output: String?

    @Option(help: "The file -o yaml writes (created 0600; it must not exist).")
    var outputFile: String?

    @Flag(help: "Also restore ServiceAccount token Secrets.")
    var includeServiceAccountTokens = false

    @Flag(help: "Also restore Helm release Secrets (helm.sh/release.v1).")
    var includeHelmReleases = false

    @Option(help: "The kubeconfig context to use.")
    var kubeContext: String?

    @OptionGroup(title: "S3") var s3: S3AccessOptions

    func run() async throws {
        let mode = try self.mode()
        let context = try WorkerSetup.context(storage: storage, s3: s3, scope: scope)
        if let target = targetNamespace {
            do { _ = try BackupLocation(namespace: target, policy: "x", environment: "x") }
            catch { throw CommandLineError.usage("--target-namespace \(target): \(error.problem); \(error.fix)") }
        }
        var client: KubeClient?
        switch mode {
        case .apply: client = try kubernetesClient(context: kubeContext, purpose: "--apply writes")
        case .dryRun: client = try? kubernetesClient(context: kubeContext, purpose: "the dry run looks")
        case .export: client = nil
        }
        let options = RestoreObjectsCommand.Options(
            encryption: try encryption.source(), mode: mode, targetNamespace: targetNamespace,
            includeServiceAccountTokens: includeServiceAccountTokens, includeHelmReleases: includeHelmReleases, client: client)
        let reference = backup
        let result: RestoreObjectsCommand.Result
        do { result = try await runInterruptibly { try await RestoreObjectsCommand(context: context, options: options).run(reference) } }
        catch { throw CommandLineError(error) }

        if case .export = mode, let path = outputFile {
            try write(result.objects, to: path)
        }
        let heading: String
        switch mode {
        case .dryRun: heading = "dry run (--apply to restore)"
        case .apply: heading = "restored"
        case .export: heading = "written to \(outputFile ?? "")"
        }
        print("backup \(result.backupID) → namespace \(result.namespace), \(heading):")
        for item in result.items { print("  " + item.line) }
        if result.items.isEmpty { print("  (the backup holds no Secrets or ConfigMaps)") }
        let failures = result.failures
        guard failures.isEmpty else {
            throw CommandLineError.failure("\(failures.count) of \(result.items.count) object(s) could not be restored: \(failures.map { "\($0.kind)/\($0.name)" }.joined(separator: ", ")); see the lines above")
        }
    }

    private func mode() throws(CommandLineError) -> RestoreObjectsCommand.Mode {
        switch (output, outputFile) {
        case (nil, nil):
            return apply ? .apply(overwrite: overwrite) : .dryRun(overwrite: overwrite)
        case ("yaml", .some):
            guard !apply else { throw .usage("--apply writes to the API and -o yaml to a file; choose one") }
            return .export
        case ("yaml", nil):
            throw .usage("-o yaml needs --output-file F: Secrets are never printed to a terminal")
        case (nil, .some):
            throw .usage("--output-file goes with -o yaml")
        case (let format?, _):
            throw .usage("-o \(format) is not offered here; use -o yaml --output-file F")
        }
    }

    /// Creates the file 0600 (it must be new: an existing file's mode or readers are unknown)
    /// and refuses a terminal.
    private func write(_ objects: [JSONValue], to path: String) throws(CommandLineError) {
        let text: String
        do { text = try YAMLEncoder().encode(JSONValue.object(["apiVersion": "v1", "kind": "List", "items": .array(objects)])) }
        catch { throw .failure("cannot write the objects as YAML: \(error.problem)") }
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw .usage("--output-file \(path): \(String(cString: strerror(errno))); name a new file (it is created with mode 0600)")
        }
        defer { close(descriptor) }
        if let failure = Array(text.utf8).withUnsafeBytes({ writeAll(descriptor, $0) }) {
            unlink(path)
            throw .failure("cannot write \(path): \(String(cString: strerror(failure))); it was removed")
        }
        guard fsync(descriptor) == 0 else {
            unlink(path)
            throw .failure("cannot sync \(path): \(String(cString: strerror(errno))); it was removed")
        }
    }
}
