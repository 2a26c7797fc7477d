import Logging
import StriveDatabase

/// The schema cache, loaded on first use (the pools are not running yet when routes are built) and
/// reloaded on demand after migrations without restarting.
public actor SchemaCacheStore {
    private var loaded: SchemaCache?
    private var loading: Task<SchemaCache, any Error>?
    private let database: Database
    private let logger: Logger

    public init(database: Database, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    public var current: SchemaCache {
        get async throws {
            if let loaded { return loaded }
            return try await load()
        }
    }

    /// Reads the catalogs again; requests keep using the previous cache until the new one is ready.
    @discardableResult
    public func reload() async throws -> SchemaCache {
        loading = nil
        return try await load()
    }

    private func load() async throws -> SchemaCache {
        if let loading { return try await loading.value }
        let task = Task { [database, logger] in
            try await database.withAdminConnection { try await SchemaCache.load(on: $0, logger: logger) }
        }
        loading = task
        do {
            let cache = try await task.value
            loaded = cache
            loading = nil
            logger.debug(
                "loaded the data API schema cache", metadata: ["tables": "\(cache.tables.count)", "functions": "\(cache.functions.count)"])
            return cache
        } catch {
            loading = nil
            throw error
        }
    }
}
