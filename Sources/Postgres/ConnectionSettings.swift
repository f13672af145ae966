internal import CLibPQ
internal import Foundation

/// How to reach a database: a libpq URL or `key=value` string, completed by the standard
/// `PG*` variables (libpq reads those itself). The password is kept apart so that it never
/// appears on a child's command line or in a log: children get it as `PGPASSWORD`.
public struct ConnectionSettings: Sendable, CustomStringConvertible {
    /// libpq keywords and values, without `password`.
    public private(set) var parameters: [(key: String, value: String)]
    var password: String?
    /// Where the settings came from, as the user wrote it (`--database`, `--target`,
    /// `BACKSTOP_TARGET`): what messages tell the user to check.
    public let option: String

    /// `connectionString` may be empty (everything from `PG*`). `passwordFile` holds the
    /// password (a mounted Secret); it beats one in the string or in `PGPASSWORD`. `option` and
    /// `passwordFileOption` name where each came from, for messages.
    public init(_ connectionString: String, passwordFile: String? = nil, option: String = "--database",
                passwordFileOption: String = "--password-file") throws(PostgresError) {
        parameters = []
        self.option = option
        if !connectionString.isEmpty {
            var errorMessage: UnsafeMutablePointer<CChar>?
            guard let options = PQconninfoParse(connectionString, &errorMessage) else {
                let reason = errorMessage.map { String(cString: $0).trimmingCharacters(in: .whitespacesAndNewlines) } ?? "unparsable"
                if let errorMessage { PQfreemem(errorMessage) }
                throw PostgresError(
                    .invalidConnectionString,
                    "\(option): \(reason); use a URL like postgres://user@host:5432/dbname or key=value pairs like \"host=db dbname=orders\", or leave it empty to use PGHOST, PGDATABASE and the other PG* variables")
            }
            defer { PQconninfoFree(options) }
            var option = options
            while let keyword = option.pointee.keyword {
                if let value = option.pointee.val {
                    let key = String(cString: keyword)
                    if key == "password" {
                        password = String(cString: value)
                    } else {
                        parameters.append((key, String(cString: value)))
                    }
                }
                option += 1
            }
        }
        if let passwordFile {
            guard let contents = FileManager.default.contents(atPath: passwordFile) else {
                throw PostgresError(.invalidConnectionString,
                                    "\(passwordFileOption) \(passwordFile) cannot be read; mount the Secret there or fix the path")
            }
            let text = String(decoding: contents, as: UTF8.self).trimmingCharacters(in: .newlines)
            guard !text.isEmpty else {
                throw PostgresError(.invalidConnectionString,
                                    "\(passwordFileOption) \(passwordFile) is empty; put the database password in it (a Secret's key mounted as a file)")
            }
            password = text
        }
    }

    /// The value of a keyword given explicitly (not from the environment).
    public func value(of key: String) -> String? {
        parameters.last { $0.key == key }?.value
    }

    /// The database name: the given one, else `PGDATABASE`, else the user name as libpq does.
    public var databaseName: String? {
        value(of: "dbname") ?? ProcessInfo.processInfo.environment["PGDATABASE"]
            ?? value(of: "user") ?? ProcessInfo.processInfo.environment["PGUSER"]
    }

    /// The same server and credentials, another database.
    public func withDatabase(_ name: String) -> ConnectionSettings {
        var copy = self
        copy.parameters.removeAll { $0.key == "dbname" }
        copy.parameters.append(("dbname", name))
        return copy
    }

    /// `key='value'` pairs for a child's `--dbname`, without the password.
    public var connectionString: String {
        parameters.map { "\($0.key)='\(Self.quote($0.value))'" }.joined(separator: " ")
    }

    /// Variables a child needs besides the connection string.
    public var childEnvironment: [String: String] {
        var environment = ["PGAPPNAME": "backstop"]
        if let password { environment["PGPASSWORD"] = password }
        return environment
    }

    /// `user@host:port/dbname` for messages; never the password.
    public var description: String {
        let environment = ProcessInfo.processInfo.environment
        let host = value(of: "host") ?? environment["PGHOST"] ?? "localhost"
        let port = value(of: "port") ?? environment["PGPORT"] ?? "5432"
        let user = value(of: "user") ?? environment["PGUSER"]
        return (user.map { "\($0)@" } ?? "") + "\(host):\(port)/\(databaseName ?? "?")"
    }

    /// Keywords and values for PQconnectdbParams, password included.
    var libpqParameters: [(key: String, value: String)] {
        var all = parameters
        if let password { all.append(("password", password)) }
        if value(of: "application_name") == nil { all.append(("application_name", "backstop")) }
        return all
    }

    private static func quote(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'")
    }
}
