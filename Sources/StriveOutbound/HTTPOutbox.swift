import AsyncHTTPClient
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import PostgresNIO
import ServiceLifecycle
import StriveCore
import StriveDatabase
import StriveMetrics

/// Delivers `net.http_request_queue` (pg_net's queue, filled by net.http_* and Database Webhooks in the
/// transactions that make the requests). Every instance runs it: woken by `strive_net` notifications at
/// each commit that queued a request, it claims due requests with SKIP LOCKED and a lease, sends them
/// concurrently, and records each answer in `net._http_response` under the request's id. A network error,
/// a timeout, a 5xx or a 429 is tried again with back-off until `maxAttempts`; an instance killed
/// mid-request leaves its lease to expire, and the request is sent again by whichever instance is alive:
/// delivery is at least once, and `webhook-id` (the same on every attempt) lets a receiver drop repeats.
public struct HTTPOutbox: Service {
    static let channel = "strive_net"
    /// Requests claimed at once; they are sent concurrently.
    static let batch = 32
    /// Longest answer body kept in `net._http_response.content`; the rest is dropped.
    static let maximumContentBytes = 1 << 20
    /// Answers are kept this long, as pg_net's `pg_net.ttl`.
    static let responseLifetime = "6 hours"

    let database: Database
    let client: HTTPClient
    let policy: AddressPolicy
    let signer: WebhookSigner?
    let maxAttempts: Int
    let pollInterval: Duration
    let logger: Logger
    let userAgent: String
    /// Old answers are deleted at most once a minute, not at every wake-up.
    let forgetting = Every(.seconds(60))

    public init(
        database: Database, settings: OutboundSettings, version: String, pollInterval: Duration = .seconds(1), logger: Logger
    ) {
        self.database = database
        var configuration = HTTPClient.Configuration()
        // A redirect would be a second request to an address nobody checked.
        configuration.redirectConfiguration = .disallow
        configuration.decompression = .enabled(limit: .ratio(20))
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.policy = AddressPolicy(allowing: settings.allowPrivate)
        self.signer = settings.signingSecret.flatMap(WebhookSigner.init)
        self.maxAttempts = settings.maxAttempts
        self.pollInterval = pollInterval
        self.logger = logger
        self.userAgent = "strive-net/\(version)"
    }

    public func run() async throws {
        await database.runOutbox(channel: Self.channel, pollInterval: pollInterval, logger: logger) { await deliverDue() }
        try? await client.shutdown()
    }

    /// Sends every due request, a batch at a time, until none is left; then forgets old answers.
    func deliverDue() async {
        while !Task.isCancelled {
            let batch: [QueuedRequest]
            do {
                batch = try await claim()
            } catch {
                logger.warning("could not read the HTTP request queue", metadata: ["error": "\(String(reflecting: error))"])
                return
            }
            if batch.isEmpty { break }
            await withDiscardingTaskGroup { group in
                for request in batch { group.addTask { await deliver(request) } }
            }
        }
        guard forgetting.due() else { return }
        do {
            try await database.withServiceRoleTransaction(method: "NET", path: "responses", logger: logger) { connection in
                try await connection.run(
                    "delete from net._http_response where created < now() - interval '\(unescaped: Self.responseLifetime)'",
                    logger: logger)
            }
        } catch {
            logger.warning("could not forget old HTTP answers", metadata: ["error": "\(String(reflecting: error))"])
        }
    }

    struct QueuedRequest: Sendable {
        let id: Int64
        let method: String
        let url: String
        let headers: [String: String]
        let body: ByteBuffer?
        let timeout: Duration
        let attempt: Int
    }

    /// Takes due requests under a lease of their timeout plus a margin: another instance sends them again
    /// only if this one has not finished by then (it crashed, or lost the database).
    private func claim() async throws -> [QueuedRequest] {
        try await database.withServiceRoleTransaction(method: "NET", path: "queue", logger: logger) { connection in
            try await connection.rows(
                """
                update net.http_request_queue q
                set attempts = q.attempts + 1, claimed_until = now() + make_interval(secs => q.timeout_milliseconds / 1000.0 + 5)
                where q.id in (select id from net.http_request_queue
                               where next_attempt_at <= now() and (claimed_until is null or claimed_until < now())
                               order by id limit \(Self.batch) for update skip locked)
                returning q.id, q.method::text, q.url, coalesce(q.headers, '{}')::text, q.body, q.timeout_milliseconds, q.attempts
                """, logger: logger
            ).map { row in
                let (id, method, url, headersText, body, timeout, attempt) =
                    try row.decode((Int64, String, String, String, ByteBuffer?, Int, Int).self)
                return QueuedRequest(
                    id: id, method: method, url: url, headers: Self.headers(from: headersText), body: body,
                    timeout: .milliseconds(timeout), attempt: attempt)
            }
        }
    }

    /// A JSON object's members as header values (strings as they are, anything else as its JSON text).
    static func headers(from jsonText: String) -> [String: String] {
        guard case .object(let members)? = JSONValue(jsonText: jsonText) else { return [:] }
        return members.mapValues { value in value.stringValue ?? value.jsonText }
    }

    enum Outcome {
        case answered(HTTPClientResponse, content: ByteBuffer)
        case failed(String, timedOut: Bool)
    }

    private func deliver(_ request: QueuedRequest) async {
        var metadata: Logger.Metadata = ["request_id": "\(request.id)", "attempt": "\(request.attempt)", "method": "\(request.method)"]
        guard let url = URL(string: request.url), let host = url.host, !host.isEmpty else {
            await finish(request, with: .failed("the URL has no host", timedOut: false))
            return
        }
        metadata["host"] = "\(host)"
        if let refusal = await policy.refusal(host: host) {
            logger.warning("request from SQL refused", metadata: metadata.merging(["reason": "\(refusal)"]) { $1 })
            await finish(request, with: .failed(refusal, timedOut: false))
            return
        }
        let outcome: Outcome
        do {
            let response = try await client.execute(httpRequest(for: request), timeout: .nanoseconds(request.timeout.nanoseconds))
            var content = ByteBuffer()
            for try await var chunk in response.body where content.readableBytes < Self.maximumContentBytes {
                var slice = chunk.readSlice(length: min(chunk.readableBytes, Self.maximumContentBytes - content.readableBytes)) ?? chunk
                content.writeBuffer(&slice)
            }
            outcome = .answered(response, content: content)
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            outcome = .failed("Timeout of \(request.timeout.milliseconds) ms reached", timedOut: true)
        } catch {
            outcome = .failed("\(error)", timedOut: false)
        }
        switch outcome {
        case .answered(let response, _) where response.status.code >= 500 || response.status == .tooManyRequests:
            let waited = Self.retryAfter(response) ?? Self.backoff(attempt: request.attempt)
            await retryOrGiveUp(request, outcome: outcome, after: waited, metadata: metadata)
        case .answered:
            await finish(request, with: outcome)
        case .failed:
            await retryOrGiveUp(request, outcome: outcome, after: Self.backoff(attempt: request.attempt), metadata: metadata)
        }
    }

    private func httpRequest(for request: QueuedRequest) -> HTTPClientRequest {
        var http = HTTPClientRequest(url: request.url)
        http.method = HTTPMethod(rawValue: request.method.uppercased())
        for (name, value) in request.headers { http.headers.replaceOrAdd(name: name, value: value) }
        http.headers.replaceOrAdd(name: "User-Agent", value: userAgent)
        // One id per request, the same on every attempt: receivers drop repeats by it.
        let id = "msg_\(request.id)"
        http.headers.replaceOrAdd(name: "webhook-id", value: id)
        let body = request.body.map { Array($0.readableBytesView) } ?? []
        if let signer {
            let timestamp = Int(Date().timeIntervalSince1970)
            http.headers.replaceOrAdd(name: "webhook-timestamp", value: String(timestamp))
            http.headers.replaceOrAdd(name: "webhook-signature", value: signer.signature(id: id, timestamp: timestamp, body: body))
        }
        if let buffer = request.body { http.body = .bytes(buffer) }
        return http
    }

    /// 1 s doubling per attempt, at most 5 minutes.
    static func backoff(attempt: Int) -> Duration {
        .seconds(min(300, 1 << min(max(attempt - 1, 0), 9)))
    }

    /// A 429's or 503's `Retry-After` in seconds, at most 5 minutes.
    static func retryAfter(_ response: HTTPClientResponse) -> Duration? {
        guard let text = response.headers.first(name: "Retry-After"), let seconds = Int(text), seconds >= 0 else { return nil }
        return .seconds(min(seconds, 300))
    }

    private func retryOrGiveUp(_ request: QueuedRequest, outcome: Outcome, after delay: Duration, metadata: Logger.Metadata) async {
        guard request.attempt < maxAttempts else {
            logger.warning("request from SQL failed; giving up", metadata: metadata.merging(["attempts": "\(request.attempt)"]) { $1 })
            await finish(request, with: outcome)
            return
        }
        do {
            try await database.withServiceRoleTransaction(method: "NET", path: "queue", logger: logger) { connection in
                try await connection.run(
                    """
                    update net.http_request_queue
                    set claimed_until = null, next_attempt_at = now() + make_interval(secs => \(Double(delay.components.seconds)))
                    where id = \(request.id) and attempts = \(request.attempt)
                    """, logger: logger)
            }
            StriveMetrics.outboundRequest(.retried)
            logger.info("request from SQL will be retried", metadata: metadata.merging(["after_s": "\(delay.components.seconds)"]) { $1 })
        } catch {
            // The lease runs out and the request is claimed again: only later than planned.
            logger.warning("could not schedule a retry", metadata: metadata.merging(["error": "\(error)"]) { $1 })
        }
    }

    /// Records the answer (or the failure) under the request's id and removes it from the queue, in one
    /// transaction. Only the attempt that holds the request records it.
    private func finish(_ request: QueuedRequest, with outcome: Outcome) async {
        var status: Int?
        var contentType: String?
        var headersJSON: String?
        var content: String?
        var error: String?
        var timedOut = false
        switch outcome {
        case .answered(let response, let body):
            status = Int(response.status.code)
            contentType = response.headers.first(name: "Content-Type")
            var names: [String: JSONValue] = [:]
            for header in response.headers { names[header.name] = .string(header.value) }
            headersJSON = JSONValue.object(names).jsonText
            content = body.readableBytes == 0 ? nil : String(decoding: body.readableBytesView, as: UTF8.self)
        case .failed(let message, let didTimeOut):
            error = message
            timedOut = didTimeOut
        }
        do {
            let lag = try await database.withServiceRoleTransaction(method: "NET", path: "responses", logger: logger) { connection in
                try await connection.rows(
                    """
                    with done as (delete from net.http_request_queue where id = \(request.id) and attempts = \(request.attempt)
                                  returning id, created)
                    insert into net._http_response (id, status_code, content_type, headers, content, timed_out, error_msg, attempts)
                    select id, \(status), \(contentType), \(headersJSON)::jsonb, \(content), \(timedOut), \(error), \(request.attempt) from done
                    on conflict (id) do nothing
                    returning extract(epoch from clock_timestamp() - (select created from done))::float8
                    """, logger: logger
                ).first?.decode(Double.self)
            }
            StriveMetrics.outboundRequest(error == nil ? .delivered : .failed, sinceQueued: lag.map { .milliseconds(Int64($0 * 1000)) })
        } catch {
            logger.warning(
                "could not record an HTTP answer; the request will be sent again",
                metadata: ["request_id": "\(request.id)", "error": "\(String(reflecting: error))"])
        }
    }
}

/// True at most once per `interval`: for upkeep that need not run at every wake-up.
final class Every: Sendable {
    let interval: Duration
    private let last = NIOLockedValueBox<ContinuousClock.Instant?>(nil)

    init(_ interval: Duration) { self.interval = interval }

    func due() -> Bool {
        last.withLockedValue { last in
            let now = ContinuousClock.now
            if let previous = last, now - previous < interval { return false }
            last = now
            return true
        }
    }
}

extension Duration {
    fileprivate var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
    fileprivate var milliseconds: Int64 { nanoseconds / 1_000_000 }
}
