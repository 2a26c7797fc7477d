import Foundation
import Testing

/// How many tests may run a server, a database or a `strive` process at once in this test process.
/// Without a bound every suite starts its servers in the same second, and on a small machine the first
/// minute is a CPU storm in which clients time out; with it, tests queue for a slot instead.
/// `STRIVE_TEST_PARALLELISM` overrides the default of twice the processor count (at least 3).
public actor TestCapacity {
    public static let shared = TestCapacity(
        slots: ProcessInfo.processInfo.environment["STRIVE_TEST_PARALLELISM"].flatMap(Int.init).map { max(1, $0) }
            ?? max(3, 2 * ProcessInfo.processInfo.activeProcessorCount))

    /// Whether the current task holds a slot: what it starts inside it (a database, then a server on it)
    /// shares that slot instead of waiting for a second one, which could never come.
    @TaskLocal static var holdsSlot = false

    public let slots: Int
    private var free: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(slots: Int) {
        self.slots = slots
        self.free = slots
    }

    /// Runs `body` in a slot, waiting for one if all are taken.
    public nonisolated func withSlot<T>(_ body: () async throws -> T) async throws -> T {
        if Self.holdsSlot { return try await body() }
        await acquire()
        do {
            let result = try await Self.$holdsSlot.withValue(true) { try await body() }
            await release()
            return result
        } catch {
            await release()
            throw error
        }
    }

    private func acquire() async {
        if free > 0 {
            free -= 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    private func release() {
        if waiting.isEmpty {
            free += 1
        } else {
            // The slot passes straight to the longest waiter.
            waiting.removeFirst().resume()
        }
    }
}

/// A suite or test trait: each test case runs in one of `TestCapacity`'s slots (for tests that start
/// `strive` processes or servers outside `TestDatabase.withDatabase`, which takes a slot itself).
public struct CapacityBoundTrait: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        // Suites themselves hold nothing; their test cases queue.
        guard testCase != nil else { return try await function() }
        try await TestCapacity.shared.withSlot { try await function() }
    }
}

extension Trait where Self == CapacityBoundTrait {
    /// Runs each test case in a slot of the test process's shared capacity.
    public static var capacityBound: Self { CapacityBoundTrait() }
}
