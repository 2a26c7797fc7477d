import Logging
import PostgresNIO
import StriveDatabase

/// Runs plans over `Database` as the caller: the pipeline's fourth stage, and the only one that talks
/// to PostgreSQL. A plain plan is one round trip (`app.run_request` carries the identity with the
/// statement); a plan that must end otherwise than by committing — read-only, rolled back, or checked
/// against max-affected before it commits — runs in a request transaction of its own.
struct Executor: Sendable {
    let database: Database
    let logger: Logger

    /// How the statement's transaction ends.
    struct Ending: Sendable, Equatable {
        var rollback = false
    }

    func run(_ plan: Plan, as request: ApiRequest, ending: Ending) async throws -> StatementResult {
        let values = plan.values
        guard plan.readOnly || ending.rollback || plan.maxAffected != nil || plan.requiresOneRow else {
            return try await oneRoundTrip(plan, request)
        }
        return try await database.withRequestTransaction(
            request.identity, readOnly: plan.readOnly, rollback: ending.rollback, logger: logger
        ) { connection in
            let bindings = Self.bindings(values)
            let result: StatementResult
            switch plan.statement {
            case .query(let sql):
                result = try Self.decode(try await connection.rows(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger))
            case .counted(let statements):
                var total = 0
                for statement in statements {
                    total += try await connection.affectedRows(PostgresQuery(unsafeSQL: statement, binds: bindings), logger: logger)
                }
                result = StatementResult(rows: total)
            }
            try Self.checkAffected(result.rows, limit: plan.maxAffected)
            if plan.requiresOneRow && result.rows != 1 { throw RestError.notSingle(result.rows) }
            return result
        }
    }

    private func oneRoundTrip(_ plan: Plan, _ request: ApiRequest) async throws -> StatementResult {
        switch plan.statement {
        case .query(let sql):
            return try Self.decode(
                try await database.requestStatement(
                    request.identity, statement: sql, values: plan.values, columns: StatementResult.columns, writes: plan.writes,
                    logger: logger))
        case .counted(let statements):
            let rows = try await database.requestWrite(request.identity, statements: statements, values: plan.values, logger: logger)
            return StatementResult(rows: rows)
        }
    }

    /// The statement's execution plan (`EXPLAIN`), always rolled back: `analyze` runs the statement, and
    /// explaining a write must not make it.
    func explain(_ plan: Plan, as request: ApiRequest, _ options: PlanRequest) async throws -> String {
        guard case .query(let sql) = plan.statement else {
            throw RestError(
                .notAcceptable, code: "PGRST107", message: "None of these media types are available: application/vnd.pgrst.plan")
        }
        return try await database.withRequestTransaction(request.identity, readOnly: plan.readOnly, rollback: true, logger: logger) {
            connection in
            let rows = try await connection.rows(
                PostgresQuery(unsafeSQL: "explain (\(options.explainOptions)) \(sql)", binds: Self.bindings(plan.values)), logger: logger)
            var lines: [String] = []
            for row in rows {
                var buffer = try row.decode(ByteBuffer.self)
                lines.append(buffer.readString(length: buffer.readableBytes) ?? "")
            }
            return lines.joined(separator: "\n")
        }
    }

    static func decode(_ rows: [PostgresRow]) throws -> StatementResult {
        guard let row = rows.first else { throw RestError(.internalServerError, code: "PGRST000", message: "the query returned no row") }
        let (body, first, count, total, location) = try row.decode((String?, String?, Int, Int?, String?).self)
        return StatementResult(body: body, first: first, rows: count, total: total, location: location)
    }

    /// PostgREST's `max-affected` with `handling=strict`: thrown inside the transaction, so it rolls back.
    static func checkAffected(_ rows: Int, limit: Int?) throws(RestError) {
        guard let limit, rows > limit else { return }
        throw RestError(
            .badRequest, code: "PGRST124", message: "Query result exceeds max-affected preference constraint",
            details: "The query affects \(rows) rows")
    }

    /// The plan's values as the one text[] parameter its statements read.
    static func bindings(_ values: [String]) -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(values)
        return bindings
    }
}
