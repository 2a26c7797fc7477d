import Foundation
import Synchronization

/// The last server-side failures (5xx answers: bugs, database outages), newest first, for operators
/// (`/admin/v1/errors`, the console). Kept in memory per instance; the logs have them all.
public final class RecentErrors: Sendable {
    public struct Entry: Codable, Sendable, Equatable {
        public let at: Date
        public let requestID: String
        public let method: String
        public let path: String
        public let status: Int
        public let message: String

        public init(at: Date, requestID: String, method: String, path: String, status: Int, message: String) {
            self.at = at
            self.requestID = requestID
            self.method = method
            self.path = path
            self.status = status
            self.message = message
        }
    }

    private let entries = Mutex<[Entry]>([])
    let capacity: Int

    public init(capacity: Int = 200) {
        self.capacity = capacity
    }

    public func record(_ entry: Entry) {
        entries.withLock { entries in
            entries.insert(entry, at: 0)
            if entries.count > capacity { entries.removeLast(entries.count - capacity) }
        }
    }

    public var newestFirst: [Entry] { entries.withLock { $0 } }
}
