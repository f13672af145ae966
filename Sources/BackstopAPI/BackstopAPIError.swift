/// Invalid input to the shared types: names the field, the problem and the fix.
public struct BackstopAPIError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Dotted path of the offending field, e.g. `objects[0].sha256`.
    public let field: String
    public let problem: String
    public let fix: String

    public init(field: String, problem: String, fix: String) {
        self.field = field
        self.problem = problem
        self.fix = fix
    }

    public var description: String { "\(field): \(problem); \(fix)" }
}
