internal import Foundation

/// Resource quantities as the API server stores them: parsed and written back in canonical
/// form (`0.5` → `500m`, `1000m` → `1`, `0.125Gi` → `128Mi`; recording 01), so a client that
/// compares what it sent with what it reads back must compare values, not text.
enum Quantity {
    private static let binary: [(suffix: String, factor: Decimal)] = [
        ("Ki", 1024), ("Mi", 1_048_576), ("Gi", 1_073_741_824), ("Ti", 1_099_511_627_776),
        ("Pi", 1_125_899_906_842_624), ("Ei", 1_152_921_504_606_846_976),
    ]
    private static let decimal: [(suffix: String, power: Int)] = [
        ("n", -9), ("u", -6), ("m", -3), ("", 0), ("k", 3), ("M", 6), ("G", 9), ("T", 12), ("P", 15), ("E", 18),
    ]

    /// The canonical text of `text`, or nil when it is not a quantity.
    static func canonical(_ text: String) -> String? {
        let number = text.prefix { "0123456789.+-".contains($0) }
        let suffix = String(text.dropFirst(number.count))
        guard !number.isEmpty, let value = Decimal(string: String(number)) else { return nil }
        if value == 0 { return "0" }
        if let unit = binary.first(where: { $0.suffix == suffix }) {
            return format(value * unit.factor, binary: true)
        }
        if let unit = decimal.first(where: { $0.suffix == suffix }) {
            return format(value * pow10(unit.power), binary: false)
        }
        if let exponent = suffix.first.flatMap({ "eE".contains($0) ? Int(suffix.dropFirst()) : nil }) {
            return format(value * pow10(exponent), binary: false)
        }
        return nil
    }

    private static func pow10(_ power: Int) -> Decimal {
        power >= 0 ? pow(Decimal(10), power) : 1 / pow(Decimal(10), -power)
    }

    /// Binary values of at least 1 Ki that are whole in a binary unit keep the largest such
    /// unit; everything else takes the largest SI unit (a power of 10³) in which it is whole.
    private static func format(_ value: Decimal, binary: Bool) -> String {
        if binary, value.magnitude >= 1024 {
            for unit in Self.binary.reversed() where value.magnitude >= unit.factor {
                let scaled = value / unit.factor
                if scaled.isWhole { return "\(scaled)\(unit.suffix)" }
            }
        }
        for unit in decimal.reversed() {
            let scaled = value / pow10(unit.power)
            if scaled.isWhole, scaled.magnitude >= 1 { return "\(scaled)\(unit.suffix)" }
        }
        return "\(value)"
    }
}

extension Decimal {
    var isWhole: Bool {
        var rounded = Decimal()
        var copy = self
        NSDecimalRound(&rounded, &copy, 0, .down)
        return rounded == self
    }
}
