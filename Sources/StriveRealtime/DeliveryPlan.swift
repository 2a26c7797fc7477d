import StriveCore

/// For a batch of committed changes, which channels' bindings match each change, and the (change,
/// identity) pairs row-level security must decide: all of them in one authorisation query. A value,
/// computed from the channel table without I/O.
struct DeliveryPlan {
    struct Candidate {
        let key: ChannelKey
        /// The matching bindings' ids, ascending (the `ids` of the pushed frame).
        let ids: [Int]
        /// nil: the service role, which reads every row.
        let identity: Authorizer.Identity?
    }

    /// Per change, in batch order.
    let candidates: [[Candidate]]
    let pairs: Set<Authorizer.Pair>

    init(_ changes: [Change], channels: ChannelTable) {
        var candidates: [[Candidate]] = Array(repeating: [], count: changes.count)
        var pairs: Set<Authorizer.Pair> = []
        let index = BindingIndex(channels.channels)
        for (position, change) in changes.enumerated() where !change.isBroadcast {
            let record = change.filterRecord()
            var matched: [ChannelKey: [Int]] = [:]
            for (key, binding) in index.bindings(for: change, record: record)
            where binding.accepts(change) && (binding.filter?.matches(record) ?? true) {
                matched[key, default: []].append(binding.id)
            }
            for (key, ids) in matched {
                guard let channel = channels[key] else { continue }
                let identity = channel.grant.identity
                candidates[position].append(Candidate(key: key, ids: ids.sorted(), identity: identity))
                if let identity { pairs.insert(Authorizer.Pair(change: position, identity: identity)) }
            }
        }
        self.candidates = candidates
        self.pairs = pairs
    }
}

/// The last `capacity` commit → delivery lags, for the operators' percentiles.
struct LagWindow: Sendable {
    let capacity: Int
    private var samples: [Double] = []
    private var next = 0

    init(capacity: Int) { self.capacity = capacity }

    mutating func record(milliseconds: Double) {
        if samples.count < capacity {
            samples.append(milliseconds)
        } else {
            samples[next] = milliseconds
        }
        next = (next + 1) % capacity
    }

    /// The `p` quantile (0…1) of the window; nil before any sample.
    func percentile(_ p: Double) -> Double? {
        guard !samples.isEmpty else { return nil }
        let sorted = samples.sorted()
        return sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
    }
}
