import Metrics
import Prometheus

/// The process's metrics: one Prometheus registry, which `/metrics` renders, behind swift-metrics.
///
/// Strive's instruments are made with this registry's factory directly, so they land in it whatever
/// order things start in; the global `MetricsSystem` is bootstrapped with the same factory on first use
/// (once per process, as swift-metrics allows) for the libraries that record through it — Hummingbird's
/// `MetricsMiddleware` among them. Call `bootstrap()` before building a router.
public enum StriveMetrics {
    public static let registry = PrometheusCollectorRegistry()

    /// Prometheus names for Hummingbird's instruments, and Prometheus's conventions (`_total`, `_seconds`).
    static let renamed: [String: String] = [
        "hb.requests": "strive_http_requests_total",
        "hb.request.errors": "strive_http_request_errors_total",
        "http.server.request.duration": "strive_http_request_duration_seconds",
        "http.server.active_requests": "strive_http_active_requests",
    ]
    static let renamedLabels: [String: String] = [
        "http.route": "route", "http.request.method": "method", "http.response.status_code": "status", "error.type": "status",
    ]

    static let factory: PrometheusMetricsFactory = {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(500), .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
            .seconds(5), .seconds(10),
        ]
        factory.nameAndLabelSanitizer = { name, labels in
            (renamed[name] ?? name, labels.map { (renamedLabels[$0.0] ?? $0.0, $0.1) })
        }
        return factory
    }()

    private static let bootstrapped: Bool = {
        MetricsSystem.bootstrap(factory)
        return true
    }()

    /// Points swift-metrics at the registry (once; later calls do nothing).
    public static func bootstrap() {
        _ = bootstrapped
    }

    /// The text exposition format (version 0.0.4) of every metric recorded so far.
    public static func render() -> [UInt8] {
        registry.emitToBuffer()
    }

    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
}

/// The instruments Strive records itself, by subsystem. Labels with unbounded values (user ids, paths)
/// never appear: every label here has a small fixed set of values.
extension StriveMetrics {
    public enum Pool: String, Sendable, CaseIterable {
        case request, admin
    }

    private static let connectionsInUse = Dictionary(
        uniqueKeysWithValues: Pool.allCases.map {
            ($0, Meter(label: "strive_db_connections_in_use", dimensions: [("pool", $0.rawValue)], factory: factory))
        })
    private static let acquireWait = Dictionary(
        uniqueKeysWithValues: Pool.allCases.map {
            ($0, Timer(label: "strive_db_acquire_wait_seconds", dimensions: [("pool", $0.rawValue)], factory: factory))
        })

    /// A pooled connection was handed out after waiting `wait` for it.
    public static func connectionAcquired(_ pool: Pool, wait: Duration) {
        connectionsInUse[pool]?.increment()
        acquireWait[pool]?.record(duration: wait)
    }

    public static func connectionReleased(_ pool: Pool) {
        connectionsInUse[pool]?.decrement()
    }

    /// A session began (`method`: password, otp, recovery, invite, email_change, anonymous, totp, token_refresh).
    public static func signedIn(method: String) {
        Counter(label: "strive_auth_sign_ins_total", dimensions: [("method", method)], factory: factory).increment()
    }

    /// An external provider's sign-in moved on: `started`, `signed_in`, or the error code that ended it.
    /// `provider` is a configured provider's name or `unknown` (a state that names none).
    public static func externalSignIn(provider: String, outcome: String) {
        Counter(
            label: "strive_auth_external_sign_ins_total", dimensions: [("provider", provider), ("outcome", outcome)], factory: factory
        ).increment()
    }

    /// An auth request was refused; `reason` is its error code (invalid_credentials, otp_expired, …).
    public static func authFailed(reason: String) {
        Counter(label: "strive_auth_failures_total", dimensions: [("reason", reason)], factory: factory).increment()
    }

    private static let storageBytesIn = Counter(label: "strive_storage_bytes_in_total", factory: factory)
    private static let storageBytesOut = Counter(label: "strive_storage_bytes_out_total", factory: factory)

    public static func storageReceived(bytes: Int) {
        storageBytesIn.increment(by: Int64(bytes))
    }

    public static func storageSent(bytes: Int) {
        storageBytesOut.increment(by: Int64(bytes))
    }

    private static let imagesTransformed = Counter(label: "strive_storage_image_transformations_total", factory: factory)
    private static let imageBytesOut = Counter(label: "strive_storage_image_transformed_bytes_total", factory: factory)

    /// An image was transformed and sent (`/render/image`).
    public static func imageTransformed(bytes: Int) {
        imagesTransformed.increment()
        imageBytesOut.increment(by: Int64(bytes))
    }

    private static let variantHits = Counter(
        label: "strive_storage_image_variant_requests_total", dimensions: [("cache", "hit")], factory: factory)
    private static let variantMisses = Counter(
        label: "strive_storage_image_variant_requests_total", dimensions: [("cache", "miss")], factory: factory)
    private static let variantsEvicted = Counter(label: "strive_storage_image_variants_evicted_total", factory: factory)

    /// A transformed image asked for: served from the variant cache, or computed.
    public static func imageVariant(cached: Bool) { (cached ? variantHits : variantMisses).increment() }
    public static func imageVariantsEvicted(_ count: Int) { variantsEvicted.increment(by: Int64(count)) }

    private static let resumableParts = Counter(label: "strive_storage_resumable_parts_total", factory: factory)
    private static let resumableUploadsFinished = Counter(label: "strive_storage_resumable_uploads_finished_total", factory: factory)

    /// A resumable upload received a part, or became its object.
    public static func resumablePart(bytes: Int) {
        resumableParts.increment()
        storageBytesIn.increment(by: Int64(bytes))
    }

    public static func resumableFinished() { resumableUploadsFinished.increment() }

    /// What became of one attempt at an HTTP request from SQL (net.http_*, webhooks).
    public enum OutboundOutcome: String, CaseIterable, Sendable {
        /// Answered with a status that ends it (anything but a 5xx or 429).
        case delivered
        /// A network error, timeout, 5xx or 429: tried again later.
        case retried
        /// Out of attempts, or refused before sending (a private address): recorded as an error.
        case failed
    }

    private static let outboundAttempts = Dictionary(
        uniqueKeysWithValues: OutboundOutcome.allCases.map {
            ($0, Counter(label: "strive_net_requests_total", dimensions: [("outcome", $0.rawValue)], factory: factory))
        })
    private static let outboundLag = Timer(label: "strive_net_delivery_lag_seconds", factory: factory)

    private static let cronSucceeded = Counter(label: "strive_cron_runs_total", dimensions: [("status", "succeeded")], factory: factory)
    private static let cronFailed = Counter(label: "strive_cron_runs_total", dimensions: [("status", "failed")], factory: factory)

    /// A scheduled job's run ended.
    public static func cronRun(succeeded: Bool) { (succeeded ? cronSucceeded : cronFailed).increment() }

    /// One attempt's outcome; for a final one, how long after it was queued.
    public static func outboundRequest(_ outcome: OutboundOutcome, sinceQueued lag: Duration? = nil) {
        outboundAttempts[outcome]?.increment()
        if let lag { outboundLag.recordNanoseconds(lag.components.seconds * 1_000_000_000 + lag.components.attoseconds / 1_000_000_000) }
    }

    private static let sockets = Gauge(label: "strive_realtime_sockets", factory: factory)
    private static let channels = Gauge(label: "strive_realtime_channels", factory: factory)
    private static let changeDeliveries = Counter(
        label: "strive_realtime_deliveries_total", dimensions: [("kind", "postgres_changes")], factory: factory)
    private static let broadcastDeliveries = Counter(
        label: "strive_realtime_deliveries_total", dimensions: [("kind", "broadcast")], factory: factory)
    private static let deliveryLag = Timer(label: "strive_realtime_delivery_lag_seconds", factory: factory)

    /// Sockets and channels open now (set when `/metrics` is read).
    public static func realtime(sockets socketCount: Int, channels channelCount: Int) {
        sockets.record(socketCount)
        channels.record(channelCount)
    }

    /// Messages sent to sockets: row changes, and broadcasts.
    public static func delivered(changes: Int, broadcasts: Int) {
        if changes > 0 { changeDeliveries.increment(by: Int64(changes)) }
        if broadcasts > 0 { broadcastDeliveries.increment(by: Int64(broadcasts)) }
    }

    /// From a change's commit to its delivery to the sockets that may see it.
    public static func deliveryLag(_ lag: Duration) {
        deliveryLag.record(duration: lag)
    }

    private static let builtInMigrations = Gauge(label: "strive_migrations_applied", dimensions: [("kind", "built_in")], factory: factory)
    private static let projectMigrations = Gauge(label: "strive_migrations_applied", dimensions: [("kind", "project")], factory: factory)
    private static let migrationVersion = Gauge(label: "strive_migration_version", factory: factory)

    /// The migrations applied to the database (set when `/metrics` is read); `version` is the number of the
    /// newest built-in one.
    public static func migrations(builtIn: Int, project: Int, version: Int) {
        builtInMigrations.record(builtIn)
        projectMigrations.record(project)
        migrationVersion.record(version)
    }
}
