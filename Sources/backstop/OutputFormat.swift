import Foundation
import YAML

/// What `-o` offers: a table for people, JSON and YAML for tools.
enum OutputFormat: String, CaseIterable {
    case text
    case json
    case yaml

    /// Prints `value` as a JSON or YAML document on stdout.
    func print<T: Encodable>(_ value: T) throws(CommandLineError) {
        switch self {
        case .text, .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            do { Swift.print(String(decoding: try encoder.encode(value), as: UTF8.self)) }
            catch { throw .failure("cannot write the result as JSON: \(error.localizedDescription)") }
        case .yaml:
            do { Swift.print(try YAMLEncoder().encode(value), terminator: "") }
            catch { throw .failure("cannot write the result as YAML: \(error.problem)") }
        }
    }
}

/// Columns padded to their widest cell, two spaces apart.
func printTable(_ header: [String], _ rows: [[String]]) {
    let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
    for line in [header] + rows {
        print(line.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
            .joined(separator: "  ").trimmingCharacters(in: .whitespaces))
    }
}
