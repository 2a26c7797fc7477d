/// Fixed one-minute windows of attempts per key (an IP address, an email address). In memory and per
/// process: several Strive instances each apply the limit. Bounded: expired windows are dropped when
/// the table grows, and when every window is live the oldest are.
public actor RateLimiter {
    public let limit: Int
    public let window: Duration
    private let capacity: Int
    private var windows: [String: (start: ContinuousClock.Instant, count: Int)] = [:]

    public init(limit: Int, window: Duration = .seconds(60), capacity: Int = 100_000) {
        self.limit = limit
        self.window = window
        self.capacity = capacity
    }

    /// Counts an attempt; nil when allowed, else the seconds until the window resets.
    public func attempt(_ key: String, now: ContinuousClock.Instant = .now) -> Int? {
        if var current = windows[key], now - current.start < window {
            guard current.count < limit else {
                let remaining = window - (now - current.start)
                return max(1, Int(remaining.components.seconds) + (remaining.components.attoseconds > 0 ? 1 : 0))
            }
            current.count += 1
            windows[key] = current
            return nil
        }
        if windows.count >= capacity { evict(now: now) }
        windows[key] = (now, 1)
        return nil
    }

    private func evict(now: ContinuousClock.Instant) {
        windows = windows.filter { now - $0.value.start < window }
        if windows.count >= capacity {
            let oldest = windows.sorted { $0.value.start < $1.value.start }.prefix(windows.count - capacity / 2)
            for (key, _) in oldest { windows[key] = nil }
        }
    }
}
