import Foundation
import HTTPTypes
import Logging
import PostgresNIO
import StriveCore
import StriveDatabase

public struct RestSettings: Sendable {
    /// Most rows one response returns, like PostgREST's `db-max-rows`.
    public var maxRows: Int
    public var maxBodyBytes: Int
    /// PostgREST's db-plan-enabled: `Accept: application/vnd.pgrst.plan` answers the statement's plan.
    public var planEnabled: Bool
    /// PostgREST's db-aggregates-enabled: `count()`, `col.sum()` … in `select`.
    public var aggregatesEnabled: Bool
    /// PostgREST's db-tx-end.
    public var transactionEnd: TransactionEnd
    /// The schemas a request may name with `Accept-Profile`/`Content-Profile`; the first is the default.
    public var schemas: [String]

    public init(
        maxRows: Int = 1000, maxBodyBytes: Int = 1024 * 1024, planEnabled: Bool = false, aggregatesEnabled: Bool = false,
        transactionEnd: TransactionEnd = .commit, schemas: [String] = ["public"]
    ) {
        self.aggregatesEnabled = aggregatesEnabled
        self.maxRows = maxRows
        self.maxBodyBytes = maxBodyBytes
        self.planEnabled = planEnabled
        self.transactionEnd = transactionEnd
        self.schemas = schemas
    }
}

/// The data API as PostgREST's pipeline: request (`ApiRequest`) → plan (`Planner`, against the schema
/// cache, no database) → statement (`SQLBuilder`) → execution (`Executor`, one round trip) → reply
/// (`ReplyWriter`). This type only runs the stages in order and maps database refusals once.
public struct RestService: Sendable {
    public let database: Database
    public let schema: SchemaCacheStore
    public let settings: RestSettings
    let logger: Logger

    /// `settings.schemas` and the store's are the same list: the store loads what requests may name.
    public init(database: Database, schema: SchemaCacheStore, settings: RestSettings, logger: Logger) {
        self.database = database
        self.schema = schema
        self.settings = settings
        self.logger = logger
    }

    public func handle(_ request: ApiRequest) async throws -> RestReply {
        let planner = Planner(cache: try await schema.cache(for: request.schema), settings: settings)
        let plan: Plan
        switch request.action {
        case .read: plan = try planner.read(request)
        case .insert: plan = try planner.insert(request)
        case .update: plan = try planner.update(request)
        case .delete: plan = try planner.delete(request)
        case .call: plan = try planner.call(request)
        }
        let executor = Executor(database: database, logger: logger)
        if case .plan(let options) = request.output {
            let text = try await executor.explain(plan, as: request, options)
            return ReplyWriter.plan(text, media: request.output)
        }
        let ending = settings.transactionEnd.resolve(requested: request.preferences.transaction?.rawValue)
        let result = try await executor.run(plan, as: request, ending: Executor.Ending(rollback: ending.rollback))
        return try ReplyWriter.reply(plan, result, request: request, appliedTransaction: ending.applied)
    }

    /// The schema cache a document for `Accept-Profile: profile` describes (/openapi.json per profile).
    public func schemaCache(profile: String?) async throws -> SchemaCache {
        try await schema.cache(for: try ApiRequest.exposed(profile, schemas: settings.schemas))
    }
}
