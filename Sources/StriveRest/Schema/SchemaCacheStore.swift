import Logging
import StriveDatabase

/// The schema caches of the exposed schemas, loaded on first use (the pools are not running yet when
/// routes are built) and reloaded together on demand after migrations without restarting.
public actor SchemaCacheStore {
    private var loaded: [String: SchemaCache]?
    private var loading: Task<[String: SchemaCache], any Error>?
    private let database: Database
    private let logger: Logger
    /// The exposed schemas; the first is the default.
    public nonisolated let schemas: [String]

    public init(database: Database, schemas: [String] = ["public"], logger: Logger) {
        self.database = database
        self.schemas = schemas.isEmpty ? ["public"] : schemas
        self.logger = logger
    }

    /// The default schema's cache.
    public var current: SchemaCache {
        get async throws { try await cache(for: schemas[0]) }
    }

    /// The cache of one exposed schema (an unexposed one is the default's).
    public func cache(for schema: String) async throws -> SchemaCache {
        var caches = loaded ?? [:]
        if loaded == nil { caches = try await load() }
        return caches[schema] ?? caches[schemas[0]] ?? SchemaCache(schema: schema, tables: [:], foreignKeys: [], functions: [:])
    }

    /// Reads the catalogs again; requests keep using the previous cache until the new one is ready.
    public func reload() async throws {
        loading = nil
        _ = try await load()
    }

    private func load() async throws -> [String: SchemaCache] {
        if let loading { return try await loading.value }
        let task = Task { [database, logger, schemas] in
            try await database.withAdminConnection { connection in
                var caches: [String: SchemaCache] = [:]
                for schema in schemas { caches[schema] = try await SchemaCache.load(on: connection, schema: schema, logger: logger) }
                return caches
            }
        }
        loading = task
        do {
            let cache = try await task.value
            loaded = cache
            loading = nil
            logger.debug(
                "loaded the data API schema cache",
                metadata: [
                    "schemas": "\(schemas.joined(separator: ","))", "tables": "\(cache.values.map(\.tables.count).reduce(0, +))",
                    "functions": "\(cache.values.map(\.functions.count).reduce(0, +))",
                ])
            return cache
        } catch {
            loading = nil
            throw error
        }
    }
}
