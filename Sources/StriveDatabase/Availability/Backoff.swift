/// Capped exponential backoff with jitter, for every loop that reconnects to the database (the
/// availability monitor, the cluster supervisor, realtime's feed and bus): 100 ms, 200 ms, 400 ms, …
/// up to `maximum`, each delay drawn between half and all of its step so instances do not reconnect in
/// lockstep.
public struct Backoff: Sendable {
    public let initial: Duration
    public let maximum: Duration
    private var step: Duration

    public init(initial: Duration = .milliseconds(100), maximum: Duration = .seconds(5)) {
        self.initial = initial
        self.maximum = maximum
        self.step = initial
    }

    /// The next delay; each call doubles the step until `maximum`.
    public mutating func next() -> Duration {
        let delay = step
        step = min(step * 2, maximum)
        let fraction = Double.random(in: 0.5...1)
        return delay * fraction
    }

    /// How a client of the database reconnects after losing it (the availability monitor, realtime's feed
    /// and bus): 100 ms doubling to 2 s, the README's promise in one place.
    public static var reconnect: Backoff { Backoff(initial: .milliseconds(100), maximum: .seconds(2)) }

    /// After a success: start again from `initial`.
    public mutating func reset() {
        step = initial
    }
}
