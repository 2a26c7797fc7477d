/// One broken rule in the configuration: which setting, what rule, and what kind of value was seen.
///
/// `observed` never carries a secret's value; for secrets it describes only the shape ("12 characters").
public struct ConfigurationProblem: Sendable, Equatable, CustomStringConvertible {
    public let variable: String
    public let rule: String
    public let observed: String?

    public init(variable: String, rule: String, observed: String? = nil) {
        self.variable = variable
        self.rule = rule
        self.observed = observed
    }

    public var description: String {
        if let observed { return "\(variable): \(rule) (got \(observed))" }
        return "\(variable): \(rule)"
    }
}

/// Every problem found while validating the configuration, reported together so one run shows them all.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public let problems: [ConfigurationProblem]

    public init(problems: [ConfigurationProblem]) {
        self.problems = problems
    }

    public var description: String {
        let noun = problems.count == 1 ? "problem" : "problems"
        let lines = problems.map { "  - \($0)" }.joined(separator: "\n")
        return "invalid configuration (\(problems.count) \(noun)):\n\(lines)"
    }
}
