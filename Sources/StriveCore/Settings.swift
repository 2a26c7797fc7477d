/// The variables `strive` reads. Each one's flag, default, accepted values and help are declared once,
/// in `setting`; the loader, `strive serve --help` and the README's table all come from there.
public enum ConfigVariable: String, CaseIterable, Sendable {
    case databaseURL = "DATABASE_URL"
    case environment = "STRIVE_ENV"
    case host = "STRIVE_HOST"
    case port = "STRIVE_PORT"
    case publicURL = "STRIVE_PUBLIC_URL"
    case dataDirectory = "STRIVE_DATA_DIR"
    case storageDirectory = "STRIVE_STORAGE_DIR"
    case logLevel = "STRIVE_LOG_LEVEL"
    case jwtSecret = "STRIVE_JWT_SECRET"
    case anonKey = "STRIVE_ANON_KEY"
    case serviceRoleKey = "STRIVE_SERVICE_ROLE_KEY"
    case jwtExpiry = "STRIVE_JWT_EXPIRY"
    case refreshReuseInterval = "STRIVE_REFRESH_REUSE_INTERVAL"
    case authRateLimitPerIP = "STRIVE_AUTH_RATE_LIMIT_IP"
    case authRateLimitPerEmail = "STRIVE_AUTH_RATE_LIMIT_EMAIL"
    case bcryptCost = "STRIVE_BCRYPT_COST"
    case maxRows = "STRIVE_DB_MAX_ROWS"
    case restMaxBodyBytes = "STRIVE_REST_MAX_BODY_BYTES"
    case dbPlanEnabled = "STRIVE_DB_PLAN_ENABLED"
    case dbAggregatesEnabled = "STRIVE_DB_AGGREGATES_ENABLED"
    case dbSchemas = "STRIVE_DB_SCHEMAS"
    case dbTxEnd = "STRIVE_DB_TX_END"
    case statementTimeout = "STRIVE_STATEMENT_TIMEOUT_MS"
    case poolSize = "STRIVE_DB_POOL_SIZE"
    case acquireTimeout = "STRIVE_DB_ACQUIRE_TIMEOUT_MS"
    case instanceID = "STRIVE_INSTANCE_ID"
    case realtimeReplaySeconds = "STRIVE_REALTIME_REPLAY_SECONDS"
    case postgresUser = "STRIVE_PG_USER"
    case postgresBinDirectory = "STRIVE_PG_BIN_DIR"
    case migrationsDirectory = "STRIVE_MIGRATIONS_DIR"
    case productSchema = "STRIVE_PRODUCT_SCHEMA"
    case siteURL = "STRIVE_SITE_URL"
    case authRedirectURLs = "STRIVE_AUTH_REDIRECT_URLS"
    case authAutoconfirm = "STRIVE_AUTH_AUTOCONFIRM"
    case otpExpiry = "STRIVE_AUTH_OTP_EXPIRY"
    case emailRateLimit = "STRIVE_AUTH_EMAIL_RATE_LIMIT"
    case emailInterval = "STRIVE_AUTH_EMAIL_INTERVAL"
    case smtpURL = "STRIVE_SMTP_URL"
    case smtpSenderEmail = "STRIVE_SMTP_SENDER_EMAIL"
    case smtpSenderName = "STRIVE_SMTP_SENDER_NAME"
    case smtpCAFile = "STRIVE_SMTP_CA_FILE"
    case mailTemplatesDirectory = "STRIVE_MAIL_TEMPLATES_DIR"
    case authRateLimitTokenRefresh = "STRIVE_AUTH_RATE_LIMIT_TOKEN_REFRESH"
    case authRateLimitVerify = "STRIVE_AUTH_RATE_LIMIT_VERIFY"
    case authRateLimitOTP = "STRIVE_AUTH_RATE_LIMIT_OTP"
    case authRateLimitMFA = "STRIVE_AUTH_RATE_LIMIT_MFA"
    case authAnonymous = "STRIVE_AUTH_ANONYMOUS"
    case authSecureEmailChange = "STRIVE_AUTH_SECURE_EMAIL_CHANGE"
    case authPasswordMinLength = "STRIVE_AUTH_PASSWORD_MIN_LENGTH"
    case authPasswordRequiredCharacters = "STRIVE_AUTH_PASSWORD_REQUIRED_CHARACTERS"
    case authDisableSignup = "STRIVE_AUTH_DISABLE_SIGNUP"
    case authSecurePasswordChange = "STRIVE_AUTH_SECURE_PASSWORD_CHANGE"
    case authAccessTokenHook = "STRIVE_AUTH_HOOK_CUSTOM_ACCESS_TOKEN"
    case authRateLimitAnonymous = "STRIVE_AUTH_RATE_LIMIT_ANONYMOUS"
    case authOAuthServer = "STRIVE_AUTH_OAUTH_SERVER_ENABLED"
    case authOAuthAuthorizationPath = "STRIVE_AUTH_OAUTH_SERVER_AUTHORIZATION_PATH"
    case authPasskeys = "STRIVE_AUTH_PASSKEYS_ENABLED"
    case authMFAWebAuthn = "STRIVE_AUTH_MFA_WEBAUTHN_ENABLED"
    case webauthnRPID = "STRIVE_AUTH_WEBAUTHN_RP_ID"
    case webauthnRPName = "STRIVE_AUTH_WEBAUTHN_RP_NAME"
    case webauthnRPOrigins = "STRIVE_AUTH_WEBAUTHN_RP_ORIGINS"
    case trustedProxies = "STRIVE_TRUSTED_PROXIES"
    case metricsToken = "STRIVE_METRICS_TOKEN"
    case backupSchedule = "STRIVE_BACKUP_SCHEDULE"
    case backupRetention = "STRIVE_BACKUP_RETENTION"
    case backupDirectory = "STRIVE_BACKUP_DIR"
    case storageBackend = "STRIVE_STORAGE_BACKEND"
    case s3Endpoint = "STRIVE_S3_ENDPOINT"
    case s3Region = "STRIVE_S3_REGION"
    case s3Bucket = "STRIVE_S3_BUCKET"
    case s3AccessKeyID = "STRIVE_S3_ACCESS_KEY_ID"
    case s3SecretAccessKey = "STRIVE_S3_SECRET_ACCESS_KEY"
    case s3ForcePathStyle = "STRIVE_S3_FORCE_PATH_STYLE"
    case s3PartSize = "STRIVE_S3_PART_SIZE_MB"
    case imageMaxSourceMB = "STRIVE_STORAGE_IMAGE_MAX_SOURCE_MB"
    case imageMaxMegapixels = "STRIVE_STORAGE_IMAGE_MAX_MEGAPIXELS"
    case imageMaxDimension = "STRIVE_STORAGE_IMAGE_MAX_DIMENSION"
    case imageCacheMB = "STRIVE_STORAGE_IMAGE_CACHE_MB"
    case imageLibrary = "STRIVE_STORAGE_IMAGE_LIBRARY"
    case netAllowPrivate = "STRIVE_NET_ALLOW_PRIVATE"
    case netMaxAttempts = "STRIVE_NET_MAX_ATTEMPTS"
    case webhookSecret = "STRIVE_WEBHOOK_SECRET"
    case cronJobTimeout = "STRIVE_CRON_JOB_TIMEOUT"

    var isSecret: Bool {
        switch self {
        case .jwtSecret, .serviceRoleKey, .databaseURL, .smtpURL, .metricsToken, .s3SecretAccessKey, .webhookSecret: true
        default: false
        }
    }
}

/// How one setting is written down: what it accepts, its default, and what it does.
public struct Setting: Sendable {
    /// What a value must look like.
    public enum Kind: Sendable {
        /// Free text, checked by the loader's own rule when it has one.
        case text
        /// A whole number in `range` of `unit`; `default` is nil when the default is computed.
        case integer(range: ClosedRange<Int>, unit: String, default: Int?)
        /// One of `choices` (case-insensitive).
        case choice(_ choices: [String], default: String)
    }

    public let kind: Kind
    /// The command-line flag that overrides the variable, if any.
    public let flag: String?
    /// The default as people read it ("54321", "4 per CPU core", "generated (development)").
    public let defaultText: String
    /// False when `defaultText` describes the default rather than being it.
    public let defaultIsLiteral: Bool
    /// One line for `--help`.
    public let summary: String
    /// The README's longer explanation; `summary` when there is nothing to add.
    public let details: String

    init(
        _ kind: Kind, flag: String? = nil, default literal: String? = nil, described description: String? = nil, _ summary: String,
        details: String? = nil
    ) {
        self.kind = kind
        self.flag = flag
        switch kind {
        case _ where description != nil: self.defaultText = description ?? ""
        case .integer(_, _, .some(let value)): self.defaultText = String(value)
        case .choice(_, let value): self.defaultText = value
        default: self.defaultText = literal ?? "unset"
        }
        self.defaultIsLiteral = description == nil && defaultText != "unset"
        self.summary = summary
        self.details = details ?? summary
    }

    /// This setting's row of the README's table.
    func markdownRow(name: String) -> String {
        var meaning = details
        if case .integer(let range, let unit, _) = kind, unit != "port" {
            meaning += " (\(range.lowerBound)–\(range.upperBound) \(unit))"
        }
        if case .choice(let choices, _) = kind, details == summary {
            meaning += ": " + choices.map { "`\($0)`" }.joined(separator: " ")
        }
        let flagText = flag.map { " (`\($0)`)" } ?? ""
        let defaultShown = defaultIsLiteral ? "`\(defaultText)`" : defaultText
        return "| `\(name)`\(flagText) | \(defaultShown) | \(meaning) |"
    }

    /// The declared default of an integer setting.
    public var defaultInteger: Int? {
        if case .integer(_, _, let value) = kind { return value }
        return nil
    }
}

extension ConfigVariable {
    public var setting: Setting {
        switch self {
        case .databaseURL:
            Setting(
                .text, flag: "--database-url", "PostgreSQL to use; unset runs Strive's own cluster under STRIVE_DATA_DIR",
                details: "`postgres://user:password@host:port/db[?sslmode=disable\\|prefer\\|require\\|verify-full][&host=/socket/dir]`. "
                    + "Unset: Strive runs its own cluster under `STRIVE_DATA_DIR`. Set: Strive uses that server and manages nothing. "
                    + "The user owns the schema: it must be able to create roles and be a superuser or have BYPASSRLS "
                    + "(the security helpers run as it and tables force RLS).")
        case .environment:
            Setting(
                .choice(RuntimeEnvironment.allCases.map(\.rawValue), default: RuntimeEnvironment.development.rawValue),
                "development, production or test",
                details: "`development`, `production` or `test`. Production refuses generated, short (< 32 chars), low-variety or "
                    + "published example secrets and requires both keys.")
        case .host:
            Setting(.text, flag: "--host", default: "127.0.0.1", "listen address")
        case .port:
            Setting(.integer(range: 0...65535, unit: "port", default: 54321), flag: "--port", "listen port; 0 picks a free one")
        case .publicURL:
            Setting(.text, default: "http://HOST:PORT", "the URL clients use (for signed URLs)")
        case .dataDirectory:
            Setting(
                .text, flag: "--data-dir", default: "./.strive", "data directory",
                details: "self-managed cluster (`pg/`, `run/`), development secret, storage")
        case .storageDirectory:
            Setting(.text, default: "<data dir>/storage", "object bytes")
        case .logLevel:
            Setting(
                .choice(LogLevel.allCases.map(\.rawValue), default: LogLevel.info.rawValue), flag: "--log-level",
                "log level (commands other than serve: warning)")
        case .jwtSecret:
            Setting(
                .text, described: "generated (development)", "HS256 secret, at least 32 characters",
                details: "HS256 secret, ≥ 32 characters. Development generates one once into `<data dir>/jwt-secret` (mode 0600).")
        case .anonKey:
            Setting(.text, described: "derived (development)", "a JWT signed with the secret carrying role anon")
        case .serviceRoleKey:
            Setting(
                .text, described: "derived (development)", "a JWT signed with the secret carrying role service_role (server-side only)")
        case .jwtExpiry:
            Setting(.integer(range: 5...604_800, unit: "seconds", default: 3600), "access-token lifetime in seconds (expires_in)")
        case .refreshReuseInterval:
            Setting(
                .integer(range: 0...300, unit: "seconds", default: 10),
                "seconds a just-rotated refresh token may be presented again and get the same successor (concurrent tabs); "
                    + "later reuse revokes the session")
        case .authRateLimitPerIP:
            Setting(
                .integer(range: 1...100_000, unit: "attempts", default: 30),
                "sign-in and sign-up attempts per 5 minutes per client IP, all instances together")
        case .authRateLimitPerEmail:
            Setting(
                .integer(range: 1...100_000, unit: "attempts", default: 10),
                "sign-in, sign-up and mail requests per minute per email address, all instances together")
        case .authRateLimitTokenRefresh:
            Setting(
                .integer(range: 1...100_000, unit: "refreshes", default: 150),
                "token refreshes per 5 minutes per client IP, all instances together")
        case .authRateLimitVerify:
            Setting(
                .integer(range: 1...100_000, unit: "attempts", default: 30),
                "link and code verifications per 5 minutes per client IP, all instances together")
        case .authRateLimitOTP:
            Setting(
                .integer(range: 1...100_000, unit: "requests", default: 30),
                "recovery, magic-link and resend requests per 5 minutes per client IP, all instances together")
        case .authRateLimitMFA:
            Setting(
                .integer(range: 1...100_000, unit: "attempts", default: 15),
                "MFA enrollments, challenges and verifications per minute per client IP, all instances together")
        case .authAnonymous:
            Setting(
                .choice(["true", "false"], default: "false"),
                "allow anonymous sign-ins (POST /signup without credentials; is_anonymous in the token)")
        case .authPasswordMinLength:
            Setting(
                .integer(range: 6...72, unit: "characters", default: 8),
                "shortest password sign-up and password changes accept (422 weak_password, reason length)")
        case .authPasswordRequiredCharacters:
            Setting(
                .text, "character sets a new password must each draw from, separated by `:` (422 weak_password, reason characters)",
                details: "Character sets separated by `:`, as GoTrue's `GOTRUE_PASSWORD_REQUIRED_CHARACTERS`: a new password needs "
                    + "at least one character of each set (`\\:` is a literal colon). Example: "
                    + "`abcdefghijklmnopqrstuvwxyz:ABCDEFGHIJKLMNOPQRSTUVWXYZ:0123456789`. Unset: no such rule.")
        case .authAccessTokenHook:
            Setting(
                .text, "PostgreSQL function that customizes every access token's claims (Supabase's custom access token hook)",
                details: "`pg-functions://postgres/<schema>/<function>`, as Supabase names it: a function taking and returning "
                    + "`jsonb`, called with `{user_id, claims, authentication_method}` for every token issued (sign-in, refresh, "
                    + "MFA); it returns `{claims}` (the required claims must stay) or `{error: {http_code, message}}`, which "
                    + "refuses the sign-in. It runs as the service role: `grant execute` it to `service_role`. Unset: no hook.")
        case .authSecurePasswordChange:
            Setting(
                .choice(["true", "false"], default: "true"),
                "PUT /user changes a password only with current_password or a reauthentication nonce",
                details: "`true`: `PUT /user` changes a password only with `current_password` or the nonce `GET /reauthenticate` "
                    + "mails (a recovery session needs neither), so a stolen access token cannot take over the account. `false`: "
                    + "the session alone suffices, as GoTrue's default (`GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION=false`).")
        case .authDisableSignup:
            Setting(
                .choice(["true", "false"], default: "false"),
                "refuse new accounts through /signup and /otp (422 signup_disabled); admins still create and invite users")
        case .authSecureEmailChange:
            Setting(
                .choice(["true", "false"], default: "true"),
                "an email change needs a link or code from the current address as well as the new one (false: the new one alone)")
        case .authOAuthServer:
            Setting(
                .choice(["true", "false"], default: "false"),
                "Strive as an OAuth 2.1 / OpenID Connect provider: other applications sign their users in with Strive",
                details: "`true` serves Supabase Auth's OAuth server under `/auth/v1`: `/oauth/authorize` (authorization code with "
                    + "PKCE), the consent API `/oauth/authorizations/{id}` your site's consent page calls, `/oauth/token`, "
                    + "`/oauth/userinfo`, the discovery documents and `/user/oauth/grants`, for the clients registered through "
                    + "`/admin/oauth/clients`. ID tokens (scope `openid`) need an asymmetric signing key (`strive keys rotate`). "
                    + "`false`: those routes answer 404 `feature_disabled`.")
        case .authOAuthAuthorizationPath:
            Setting(
                .text, default: "/oauth/consent",
                "the path on STRIVE_SITE_URL of your consent page; /oauth/authorize sends users there with ?authorization_id=")
        case .authPasskeys:
            Setting(
                .choice(["true", "false"], default: "false"),
                "sign-in with passkeys (WebAuthn credentials as a first factor, GoTrue's /passkeys API)",
                details: "`true` serves GoTrue's `/passkeys` API: a signed-in user registers passkeys (at most 10), anyone signs in "
                    + "with one (`/passkeys/authentication/options` then `/verify`, amr `passkey`). Credentials are checked as the "
                    + "WebAuthn specification says (origin, RP id, challenge, signature, counter; ES256, RS256, EdDSA) against the "
                    + "`STRIVE_AUTH_WEBAUTHN_RP_*` settings. `false`: 404 `passkey_disabled`.")
        case .authMFAWebAuthn:
            Setting(
                .choice(["true", "false"], default: "false"),
                "WebAuthn factors for MFA (security keys, platform authenticators): factor_type webauthn raises a session to aal2",
                details: "`true` lets users enroll `factor_type: \"webauthn\"` factors (`POST /factors`), whose challenge asks the "
                    + "authenticator to create a credential, then to sign; a verified answer raises the session to aal2 (amr "
                    + "`mfa/webauthn`). The relying party is `STRIVE_AUTH_WEBAUTHN_RP_*`. `false`: 422 `mfa_webauthn_enroll_not_enabled`.")
        case .webauthnRPID:
            Setting(
                .text, described: "the host of STRIVE_SITE_URL",
                "the WebAuthn relying party id: your site's domain, which passkeys are bound to")
        case .webauthnRPName:
            Setting(.text, default: "Strive", "the relying party name authenticators show")
        case .webauthnRPOrigins:
            Setting(
                .text, described: "the origin of STRIVE_SITE_URL",
                "origins (comma-separated) whose pages may register and use passkeys, e.g. https://app.example.com")
        case .authRateLimitAnonymous:
            Setting(
                .integer(range: 1...100_000, unit: "sign-ins", default: 30),
                "anonymous sign-ins per hour per client IP, all instances together")
        case .trustedProxies:
            Setting(
                .text, "proxies whose X-Forwarded-For names the client (comma-separated IPs or CIDRs)",
                details: "comma-separated IP addresses or CIDR ranges (`10.0.0.0/8, ::1`) of the load balancers in front of "
                    + "Strive. Only a request from one of them has its client IP taken from `X-Forwarded-For` (the nearest "
                    + "address not itself a trusted proxy); everyone else is limited by their own address.")
        case .metricsToken:
            Setting(
                .text, "a bearer token that may read /metrics (the service role key always may); at least 16 characters")
        case .backupSchedule:
            Setting(
                .text, default: "off",
                "how often `strive serve` writes a backup: off, hourly, daily, or an interval such as 6h, 30m or 90s",
                details: "how often `strive serve` writes a backup archive (as `strive backup` does) into STRIVE_BACKUP_DIR: "
                    + "`off`, `hourly`, `daily`, or an interval such as `6h`, `30m` or `90s`. With several instances on one "
                    + "database one of them takes each backup (an advisory lock); every backup is listed in "
                    + "`strive_meta.backups` with its file, size and duration.")
        case .backupRetention:
            Setting(
                .integer(range: 1...10_000, unit: "archives", default: 7),
                "scheduled backups to keep in STRIVE_BACKUP_DIR; older ones are deleted after each new one")
        case .backupDirectory:
            Setting(.text, described: "`DATA_DIR/backups`", "where `strive backup` and scheduled backups write their archives")
        case .storageBackend:
            Setting(
                .choice(StorageBackendKind.allCases.map(\.rawValue), default: StorageBackendKind.local.rawValue),
                "where object bytes live: local (STRIVE_STORAGE_DIR) or s3 (STRIVE_S3_*)",
                details: "`local` keeps object bytes under `STRIVE_STORAGE_DIR` (one machine). `s3` keeps them in an S3-compatible "
                    + "bucket (`STRIVE_S3_*`), which every instance behind a load balancer shares; see docs/SCALING.md.")
        case .s3Endpoint:
            Setting(
                .text, described: "`https://s3.REGION.amazonaws.com`", "the S3 API's base URL (MinIO, Ceph, R2, moto: theirs)")
        case .s3Region:
            Setting(.text, default: "us-east-1", "the bucket's region (part of every signature)")
        case .s3Bucket:
            Setting(.text, "the bucket object bytes go to; required with STRIVE_STORAGE_BACKEND=s3; it must exist")
        case .s3AccessKeyID:
            Setting(.text, "access key id for the bucket; required with STRIVE_STORAGE_BACKEND=s3")
        case .s3SecretAccessKey:
            Setting(.text, "secret access key for the bucket; required with STRIVE_STORAGE_BACKEND=s3")
        case .s3ForcePathStyle:
            Setting(
                .choice(["true", "false"], default: "false"), "address the bucket as ENDPOINT/BUCKET/KEY instead of BUCKET.ENDPOINT/KEY",
                details: "`true` addresses the bucket as `ENDPOINT/BUCKET/KEY` (MinIO, moto and most self-hosted stores); "
                    + "`false` as `BUCKET.ENDPOINT/KEY` (AWS).")
        case .s3PartSize:
            Setting(
                .integer(range: 5...512, unit: "MiB", default: 8),
                "uploads larger than this go to S3 as a multipart upload in parts of this size",
                details: "uploads up to this size are one PUT; larger ones a multipart upload in parts of this size (S3's "
                    + "minimum is 5). Each upload in flight holds at most two parts in memory.")
        case .imageMaxSourceMB:
            Setting(
                .integer(range: 1...1024, unit: "MiB", default: 25),
                "largest original an image transformation reads (413 beyond)")
        case .imageMaxMegapixels:
            Setting(
                .integer(range: 1...1000, unit: "megapixels", default: 50),
                "largest original an image transformation decodes, from its header: a decompression bomb is refused (413)")
        case .imageMaxDimension:
            Setting(
                .integer(range: 16...16384, unit: "pixels", default: 2500),
                "largest width or height a transformation may ask for (400 beyond)")
        case .imageCacheMB:
            Setting(
                .integer(range: 0...1_048_576, unit: "MiB", default: 512),
                "transformed images kept in the blob store, least recently used evicted beyond this; 0 keeps none")
        case .imageLibrary:
            Setting(
                .text, default: "libvips.so.42",
                "the libvips image transformations load at run time (a name the loader finds, or a path); when it cannot be "
                    + "loaded the server still runs and /render/image answers 501 saying why")
        case .netAllowPrivate:
            Setting(
                .text,
                "hosts, addresses and networks (CIDR) that HTTP requests from SQL (net.http_*, webhooks) may reach although "
                    + "they are loopback, private, link-local or cloud-metadata addresses, comma-separated, e.g. "
                    + "127.0.0.1,10.0.0.0/8,hooks.internal; unset: none")
        case .netMaxAttempts:
            Setting(
                .integer(range: 1...20, unit: "attempts", default: 5),
                "tries of an HTTP request from SQL that meets a network error, a timeout, a 5xx or a 429, with back-off "
                    + "between them (1 s doubling, or the answer's Retry-After)")
        case .cronJobTimeout:
            Setting(
                .integer(range: 1...86400, unit: "seconds", default: 600),
                "longest a scheduled job (cron.schedule) may run; it is then cancelled and its run recorded as failed")
        case .webhookSecret:
            Setting(
                .text,
                "Standard Webhooks signing secret (whsec_ then base64 of 24 to 64 bytes): every HTTP request from SQL then "
                    + "carries webhook-timestamp and webhook-signature beside its webhook-id; unset: unsigned")
        case .bcryptCost:
            Setting(
                .integer(range: 4...16, unit: "rounds", default: 10),
                "bcrypt cost of new password hashes; below 10 only with STRIVE_ENV=test")
        case .maxRows:
            Setting(
                .integer(range: 1...1_000_000, unit: "rows", default: 1000),
                "most rows one data API response returns (PostgREST's db-max-rows)")
        case .restMaxBodyBytes:
            Setting(.integer(range: 1024...(100 * 1024 * 1024), unit: "bytes", default: 1024 * 1024), "largest data API request body")
        case .dbPlanEnabled:
            Setting(
                .choice(["true", "false"], default: "false"),
                "answer `Accept: application/vnd.pgrst.plan` with the statement's EXPLAIN (PostgREST's db-plan-enabled)",
                details: "`true` lets a caller ask for the execution plan of its own request (`application/vnd.pgrst.plan+json` or "
                    + "`+text`, `options=analyze|verbose|settings|buffers|wal`; explaining a write rolls it back). Off by default, as "
                    + "in PostgREST: a plan tells a caller about tables and indexes it cannot read.")
        case .dbAggregatesEnabled:
            Setting(
                .choice(["true", "false"], default: "false"),
                "allow aggregates in `select` (`count()`, `amount.sum()`, avg, min, max) (PostgREST's db-aggregates-enabled)",
                details: "`true` lets a caller aggregate (`select=status,count()`), grouped by the other selected columns, also inside "
                    + "embeds. Off by default, as in PostgREST: an aggregate over a large table is a cheap way to make the database "
                    + "work (PGRST123 when off).")
        case .dbSchemas:
            Setting(
                .text, default: "public",
                "schemas the data API exposes, comma-separated; the first is the default (PostgREST's db-schemas)",
                details: "schemas the data API exposes, comma-separated (PostgREST's db-schemas). The first serves requests without "
                    + "a profile; `Accept-Profile` (GET, HEAD) and `Content-Profile` (writes) choose another, anything else is 406 "
                    + "PGRST106. Grants and row-level security decide access in each as in `public` (grant USAGE on the schema to "
                    + "anon and authenticated).")
        case .dbTxEnd:
            Setting(
                .choice(TransactionEnd.allCases.map(\.rawValue), default: TransactionEnd.commit.rawValue),
                "how data API transactions end, and whether `Prefer: tx=commit|rollback` may choose (PostgREST's db-tx-end)",
                details: "`commit` and `rollback` end every transaction so; the `-allow-override` forms let a request's "
                    + "`Prefer: tx=` choose, and say so in `Preference-Applied`. A `tx=` the setting does not allow is ignored.")
        case .statementTimeout:
            Setting(
                .integer(range: 100...3_600_000, unit: "milliseconds", default: 8000),
                "every request's statements are cancelled after this long (HTTP 504, SQLSTATE 57014)")
        case .poolSize:
            Setting(
                .integer(range: 1...1000, unit: "connections", default: nil), described: "4 per CPU core",
                "connections of the request pool",
                details: "connections of the request pool, plus 2 admin connections and 1 realtime LISTEN connection (the "
                    + "self-managed cluster allows 500). More backends than cores only queue inside PostgreSQL: on 2 cores, "
                    + "8 connections gave 29% more list throughput than 20 and a p99 of 42 ms instead of 762 ms.")
        case .acquireTimeout:
            Setting(
                .integer(range: 50...60_000, unit: "milliseconds", default: 10_000),
                "longest a request waits for a pooled connection before it is answered 503")
        case .instanceID:
            Setting(
                .text, default: "<host name>:<port>",
                "this instance's name among instances sharing a database (its realtime cursor)")
        case .realtimeReplaySeconds:
            Setting(
                .integer(range: 0...3600, unit: "seconds", default: 10),
                "after a restart with changes waiting, how long realtime waits for clients to rejoin before delivering them")
        case .postgresUser:
            Setting(
                .text, default: "postgres",
                "OS user that runs the self-managed cluster when Strive runs as root (PostgreSQL refuses root)")
        case .migrationsDirectory:
            Setting(
                .text, default: "./migrations", "the project's own SQL migrations, applied after Strive's built-in ones",
                details: "the project's own SQL migrations (`<timestamp>_name.sql`, from `strive migration new NAME`), applied "
                    + "in name order after Strive's built-in ones by `strive migrate` and at `strive serve` start; a missing "
                    + "folder means none")
        case .productSchema:
            Setting(
                .choice(ProductSchema.allCases.map(\.rawValue), default: ProductSchema.strive.rawValue),
                "the product schema on the platform: strive (the CRM's tables) or none (an empty public schema)",
                details: "`strive` creates the Strive CRM's tables, policies and buckets in `public` (what `strive seed` and "
                    + "`strive check` use). `none` starts a different product: auth, storage, realtime, migrations and verify "
                    + "with an empty `public` schema for the team's own migrations. Chosen when a database is first migrated; "
                    + "a database refuses the other value.")
        case .postgresBinDirectory:
            Setting(
                .text, described: "searched", "directory holding initdb, pg_ctl and postgres",
                details: "directory holding `initdb`/`pg_ctl`/`postgres`; unset: `PATH`, `pg_config --bindir`, then "
                    + "`/usr/lib/postgresql/<version>/bin` newest first")
        case .siteURL:
            Setting(
                .text, default: "http://localhost:3000", "your app's URL: where links in mail lead, and an allowed redirect")
        case .authRedirectURLs:
            Setting(
                .text, "further allowed redirect targets for links in mail, comma-separated",
                details: "further allowed `redirect_to` targets, comma-separated URLs; `*` matches within one host label or "
                    + "path segment, `**` matches anything (`https://*.example.com/**`). Anything else falls back to "
                    + "`STRIVE_SITE_URL`: no open redirects.")
        case .authAutoconfirm:
            Setting(
                .choice(["true", "false"], default: "true"), described: "true (development, test), false (production)",
                "confirm sign-ups at once instead of mailing a confirmation link",
                details: "`true` confirms sign-ups at once; `false` mails a confirmation link and refuses password sign-in "
                    + "until it is followed. Default: true in development and test, false in production (which then needs "
                    + "`STRIVE_SMTP_URL`).")
        case .otpExpiry:
            Setting(.integer(range: 60...86_400, unit: "seconds", default: 3600), "how long a link or code sent by mail stays valid")
        case .emailRateLimit:
            Setting(
                .integer(range: 1...100_000, unit: "emails", default: 30),
                "mails auth sends per hour, all instances together (429 over_email_send_rate_limit)")
        case .emailInterval:
            Setting(
                .integer(range: 0...3600, unit: "seconds", default: 60),
                "least time between two mails to one address (429 over_email_send_rate_limit)")
        case .smtpURL:
            Setting(
                .text, "mail server; unset: development logs each mail's links instead of sending it",
                details: "`smtp://user:password@host:587` (STARTTLS, required), `smtps://user:password@host:465` (TLS), or "
                    + "`smtp://host:1025?starttls=off` (plain, not in production). Unset: development and test log each "
                    + "mail's links; production refuses to start while sign-ups need confirmation.")
        case .smtpSenderEmail:
            Setting(.text, default: "no-reply@localhost", "the From address of auth mail")
        case .smtpSenderName:
            Setting(.text, default: "Strive", "the From name of auth mail")
        case .smtpCAFile:
            Setting(.text, "PEM file of certificates to trust for the mail server instead of the system's")
        case .mailTemplatesDirectory:
            Setting(
                .text, "folder of mail templates replacing the built-in ones",
                details: "folder whose `<template>.subject`, `<template>.html` and `<template>.txt` files (Mustache) replace "
                    + "the built-in ones; templates: `confirmation`, `recovery`, `magic_link`, `invite`. Variables: `confirmation_url`, "
                    + "`token`, `token_hash`, `site_url`, `email`, `redirect_to`.")
        }
    }

    /// The settings as `strive serve --help` lists them: name and summary, wrapped to `width` columns.
    public static func helpText(width: Int = 78) -> String {
        let indent = 4
        var lines: [String] = []
        for variable in allCases {
            let setting = variable.setting
            let flag = setting.flag.map { " (\($0))" } ?? ""
            lines.append(variable.rawValue + flag)
            var text = setting.summary
            if setting.defaultText != "unset" { text += "; default \(setting.defaultText)" }
            if case .integer(let range, let unit, _) = setting.kind, unit != "port" {
                text += " (\(range.lowerBound)–\(range.upperBound) \(unit))"
            }
            lines += wrap(text, width: width - indent).map { String(repeating: " ", count: indent) + $0 }
        }
        for field in ProviderField.allCases {
            lines.append(ProviderField.prefix + "<NAME>_" + field.rawValue)
            lines += wrap(field.setting.summary, width: width - indent).map { String(repeating: " ", count: indent) + $0 }
        }
        return lines.joined(separator: "\n")
    }

    /// The README's table of settings.
    public static func markdownTable() -> String {
        var rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
        rows += allCases.map { $0.setting.markdownRow(name: $0.rawValue) }
        rows += ProviderField.allCases.map { $0.setting.markdownRow(name: ProviderField.prefix + "<NAME>_" + $0.rawValue) }
        return rows.joined(separator: "\n")
    }

    private static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            if !line.isEmpty && line.count + 1 + word.count > width {
                lines.append(line)
                line = ""
            }
            line += (line.isEmpty ? "" : " ") + word
        }
        if !line.isEmpty { lines.append(line) }
        return lines
    }
}
