/// One instance per test process of something slow to start (a Python server, say), started by whichever
/// test asks first; the others wait for the same start instead of starting their own.
public actor SharedTestServer<Server: Sendable> {
    private let start: @Sendable () async throws -> Server
    private var started: Task<Server, any Error>?

    public init(_ start: @escaping @Sendable () async throws -> Server) {
        self.start = start
    }

    public func server() async throws -> Server {
        if let started { return try await started.value }
        let task = Task { try await start() }
        started = task
        return try await task.value
    }
}
