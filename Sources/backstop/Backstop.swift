import ArgumentParser
import BackstopAPI
import Engine
import Foundation

@main
struct Backstop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backstop",
        abstract: "PostgreSQL backups you can prove: dump, compress, encrypt, store, verify, restore.",
        discussion: """
            Every option can also be set by its BACKSTOP_* variable (a flag wins).
            A backup to a local folder, and its restore:
              backstop backup --storage file:///var/backups \\
                --database postgres://backup@localhost:5432/orders
              backstop restore latest --storage file:///var/backups \\
                --target postgres://backup@localhost:5432/orders_copy
            An error is one line on stderr:
              backstop: error: <what failed>; <what to do>
            Exit codes: 0 success, 1 failure, 64 usage error (a bad flag or variable
            value, a file that cannot be read). Shell completion: backstop completion.
            """,
        version: WorkerContext.toolVersion,
        subcommands: [BackupCommandLine.self, VerifyCommandLine.self, ListCommandLine.self, RestoreCommandLine.self, RestoreObjectsCommandLine.self, DrillCommandLine.self, DoctorCommandLine.self,
                      WALPushCommandLine.self, WALFetchCommandLine.self, WALStatusCommandLine.self,
                      PruneCommandLine.self, HoldCommandLine.self, ReleaseCommandLine.self, RenderCommandLine.self,
                      CompletionCommandLine.self])

    /// Runs the command and turns every error into one line on stderr and an exit code:
    /// ArgumentParser's own parse errors as well as the commands'.
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            try checkHelpTopic(arguments)
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            terminate(0)
        } catch {
            let code = report(error, arguments: arguments)
            // restore_command's statuses are PostgreSQL's: 1 is "not in the archive" (recovery
            // ends there), so every other failure, a usage error too, must stop recovery.
            if arguments.first == WALFetchCommandLine.configuration.commandName, code != 0, code != 1 {
                terminate(WALFetchCommandLine.failureExitCode)
            }
            terminate(code)
        }
    }

    /// Ends the process once its output is flushed, without running exit handlers: threads of
    /// the pools that served HTTP and libpq may still be parked in libcurl, OpenSSL or
    /// Foundation, and `exit` would tear those libraries' globals down under them (in the
    /// recovery tests a restore_command once died of SIGABRT, exit status 134, after its work
    /// was done: PostgreSQL reads that as a failed fetch and stops recovery). Nothing the
    /// worker writes waits for an exit handler: stored objects are synced and closed, and
    /// reports written, before a command returns.
    static func terminate(_ code: Int32) -> Never {
        fflush(nil)
        _exit(code)
    }

    /// Prints what `error` says; the exit code.
    static func report(_ error: any Error, arguments: [String]) -> Int32 {
        if let error = error as? CommandLineError {
            printError(error.message)
            return error.exitCode
        }
        if let code = error as? ExitCode { return code.rawValue }
        let code = exitCode(for: error)
        if code == .success {
            print(fullMessage(for: error))  // --help, --version
            return 0
        }
        // ArgumentParser's own message ("Unknown option '-x'"), with where to look.
        var message = Self.message(for: error)
        if message.hasPrefix("Error: ") { message.removeFirst("Error: ".count) }
        message = message.prefix(1).lowercased() + message.dropFirst()
        let command = arguments.first { name in subcommandNames.contains(name) }.map { "backstop \($0)" } ?? "backstop"
        printError("\(message); see `\(command) --help`")
        return code.rawValue
    }

    static func printError(_ message: String) {
        FileHandle.standardError.write(Data("backstop: error: \(message)\n".utf8))
    }

    static var subcommandNames: [String] {
        configuration.subcommands.compactMap { $0.configuration.commandName }
    }

    /// `backstop help nosuch` would print the general help and succeed: refuse it instead.
    static func checkHelpTopic(_ arguments: [String]) throws(CommandLineError) {
        guard arguments.first == "help", let topic = arguments.dropFirst().first, !topic.hasPrefix("-"),
              !subcommandNames.contains(topic) else { return }
        throw .usage("there is no command \(topic); the commands are \(subcommandNames.joined(separator: ", "))")
    }
}
