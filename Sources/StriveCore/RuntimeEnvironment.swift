/// Where Strive runs. Production refuses anything generated or weak; development generates what it lacks.
public enum RuntimeEnvironment: String, Sendable, CaseIterable {
    case development, production, test

    /// Development and test may generate and keep secrets in the data directory.
    public var generatesSecrets: Bool { self != .production }
}

/// Log levels as `STRIVE_LOG_LEVEL` accepts them (swift-log's names).
public enum LogLevel: String, Sendable, CaseIterable {
    case trace, debug, info, notice, warning, error, critical
}
