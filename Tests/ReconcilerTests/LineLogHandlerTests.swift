import Reconcilers
import Foundation
import Logging
import Synchronization
import Testing

@Suite("Structured logs")
struct LineLogHandlerTests {
    @Test("JSON and logfmt lines carry time, level, logger, message and metadata")
    func formats() throws {
        let lines = Shared<[String]>([])
        let fixed = Date(timeIntervalSince1970: 1_795_309_323)
        for format in LineLogHandler.Format.allCases {
            var logger = Logger(label: "backstop-controller") { label in
                LineLogHandler(label: label, format: format, write: { line in lines.withLock { $0.append(line) } }, now: { fixed })
            }
            logger[metadataKey: "policy"] = "shop/orders"
            logger.info("CronJob orders-production created", metadata: ["environment": "production"])
            logger.debug("not shown at info")
        }
        let written = lines.withLock { $0 }
        #expect(written.count == 2)
        let json = try JSONSerialization.jsonObject(with: Data(written[0].utf8)) as? [String: String]
        #expect(json == ["time": "2026-11-22T01:02:03.000Z", "level": "info", "logger": "backstop-controller",
                         "msg": "CronJob orders-production created", "policy": "shop/orders", "environment": "production"])
        #expect(written[1] == "time=2026-11-22T01:02:03.000Z level=info logger=backstop-controller msg=\"CronJob orders-production created\" environment=production policy=shop/orders\n")
    }
}
