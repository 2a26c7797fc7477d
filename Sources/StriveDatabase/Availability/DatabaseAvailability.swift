import Synchronization

/// Whether the database answers, as the server last found out. While it does not, request paths fail at
/// once with `DatabaseUnavailable` (every surface answers 503 with `Retry-After`) instead of queueing on a
/// pool that cannot connect. `DatabaseMonitor` keeps it current. A request that merely loses its own
/// connection does not flip it: one terminated backend is not an outage.
public final class DatabaseAvailability: Sendable {
    public enum State: Sendable, Equatable {
        case available
        case unavailable(reason: String)
    }

    private let state = Mutex<State>(.available)

    public init() {}

    public var current: State { state.withLock { $0 } }

    public var isAvailable: Bool { current == .available }

    /// Throws when the database is known to be unreachable.
    public func check() throws(DatabaseUnavailable) {
        if case .unavailable(let reason) = current { throw DatabaseUnavailable(reason: reason) }
    }

    /// Records the monitor's finding; returns whether it changed.
    @discardableResult
    public func set(_ new: State) -> Bool {
        state.withLock { state in
            defer { state = new }
            return state != new
        }
    }

}

/// The database cannot be reached (refused, closed, not answering in time): a 503, never a 500.
public struct DatabaseUnavailable: Error, Sendable, CustomStringConvertible {
    public let reason: String
    /// Seconds a client should wait before trying again.
    public static let retryAfterSeconds = 1

    public init(reason: String) {
        self.reason = reason
    }

    public var description: String { "the database is unavailable: \(reason)" }
}
