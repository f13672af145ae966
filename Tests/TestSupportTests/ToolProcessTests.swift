import Foundation
import Testing
import TestSupport

@Suite("Running tools from tests")
struct ToolProcessTests {
    @Test("a tool that fills stderr before closing stdout, and reads large input, does not block")
    func bothPipesDrain() async throws {
        // 200 KB to stderr first: more than a pipe holds while stdout is still open.
        let script = "head -c 200000 /dev/zero >&2; wc -c"
        let input = String(repeating: "x", count: 300_000)
        let result = try await ToolProcess.run("sh", ["-c", script], input: input)
        #expect(result.status == 0)
        #expect(result.output.trimmingCharacters(in: .whitespacesAndNewlines) == "300000")
        #expect(result.errors.count == 200_000)
    }
}
