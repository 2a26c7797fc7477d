import Foundation

/// Reads and validates `strive serve`'s configuration once, collecting every problem before failing.
public struct ConfigLoader: Sendable {
    /// Request-pool connections when `STRIVE_DB_POOL_SIZE` is not set: 4 per CPU core. More backends than
    /// the cores can run only queue inside PostgreSQL: on 2 cores, listing tasks at 32 concurrent clients
    /// did 3,167 req/s with p99 762 ms on 20 connections, 4,093 req/s with p99 42 ms on 8.
    public static var defaultPoolSize: Int { max(4, 4 * ProcessInfo.processInfo.activeProcessorCount) }

    /// The process environment (or a test's stand-in).
    public var environment: [String: String]
    /// Values given as command-line flags, keyed by the variable they override, with the flag's name.
    public var overrides: [ConfigVariable: (flag: String, value: String)]
    /// Relative directories are resolved against this.
    public var workingDirectory: String

    public init(
        environment: [String: String],
        overrides: [ConfigVariable: (flag: String, value: String)] = [:],
        workingDirectory: String = FileManager.default.currentDirectoryPath
    ) {
        self.environment = environment
        self.overrides = overrides
        self.workingDirectory = workingDirectory
    }

    /// The settings every command that reaches the database needs (data directory, database, how to run
    /// the self-managed cluster), validated with all their problems reported at once.
    /// Where objects are stored for `dataDirectory`: `STRIVE_STORAGE_DIR`, else its `storage` folder.
    public func storageDirectory(dataDirectory: String) -> String {
        absolute(value(.storageDirectory) ?? dataDirectory + "/storage")
    }

    /// Where backup archives go for `dataDirectory`: `STRIVE_BACKUP_DIR`, else its `backups` folder.
    public func backupDirectory(dataDirectory: String) -> String {
        absolute(value(.backupDirectory) ?? dataDirectory + "/backups")
    }

    /// Where object bytes live (`STRIVE_STORAGE_BACKEND`, `STRIVE_S3_*`), for commands other than serve.
    public func loadStorageBackend() throws(ConfigurationError) -> StorageBackend {
        var problems = Problems(labels: label)
        let backend = storageBackend(&problems)
        guard problems.isEmpty else { throw ConfigurationError(problems: problems.list) }
        return backend
    }

    public func loadDatabaseSettings() throws(ConfigurationError) -> DatabaseSettings {
        var problems = Problems(labels: label)
        let settings = databaseSettings(&problems)
        guard problems.isEmpty, let settings else { throw ConfigurationError(problems: problems.list) }
        return settings
    }

    /// The log level of commands other than serve: `STRIVE_LOG_LEVEL`, else only warnings and worse.
    public func loadCommandLogLevel() throws(ConfigurationError) -> LogLevel {
        guard value(.logLevel) != nil else { return .warning }
        var problems = Problems(labels: label)
        let level = choice(.logLevel, &problems, as: LogLevel.self) ?? .warning
        guard problems.isEmpty else { throw ConfigurationError(problems: problems.list) }
        return level
    }

    /// Validates everything; in development and test, asks `developmentSecret` for the JWT secret when none
    /// is configured (it generates one once and keeps it in the data directory).
    public func load(
        developmentSecret: (_ dataDirectory: String) throws -> String
    ) async throws(ConfigurationError) -> StriveConfig {
        var problems = Problems(labels: label)

        let runtime = choice(.environment, &problems, as: RuntimeEnvironment.self)
        let mode = runtime ?? .development

        let host = value(.host) ?? ConfigVariable.host.setting.defaultText
        if host.contains(where: { $0.isWhitespace || $0 == "/" }) {
            problems.add(.host, "must be a host name or IP address", quoted(host))
        }
        let port = integer(.port, &problems)
        let logLevel = choice(.logLevel, &problems, as: LogLevel.self) ?? .info
        let database = databaseSettings(&problems)
        let dataDirectory = database?.dataDirectory ?? absolute(ConfigVariable.dataDirectory.setting.defaultText)
        let storageDirectory = storageDirectory(dataDirectory: dataDirectory)

        let publicURL = value(.publicURL) ?? "http://\(host):\(port)"
        if let url = URLComponents(string: publicURL) {
            if !["http", "https"].contains(url.scheme?.lowercased() ?? "") || (url.host ?? "").isEmpty {
                problems.add(.publicURL, "must be an absolute http:// or https:// URL", quoted(publicURL))
            }
        } else {
            problems.add(.publicURL, "must be an absolute http:// or https:// URL", "text that is not a URL")
        }

        var auth = AuthSettings(
            accessTokenLifetime: .seconds(integer(.jwtExpiry, &problems)),
            refreshReuseInterval: .seconds(integer(.refreshReuseInterval, &problems)),
            signInsPerIP: integer(.authRateLimitPerIP, &problems),
            attemptsPerMinutePerEmail: integer(.authRateLimitPerEmail, &problems),
            bcryptCost: integer(.bcryptCost, &problems))
        if auth.bcryptCost < 10 && mode != .test {
            problems.add(.bcryptCost, "must be at least 10 (lower costs are for STRIVE_ENV=test only)", quoted(String(auth.bcryptCost)))
        }
        auth.autoconfirm = boolean(.authAutoconfirm, &problems) ?? (mode != .production)
        auth.siteURL = value(.siteURL) ?? ConfigVariable.siteURL.setting.defaultText
        if !Self.isAbsoluteWebURL(auth.siteURL) {
            problems.add(.siteURL, "must be an absolute http:// or https:// URL", quoted(auth.siteURL))
        }
        auth.redirectURLs = (value(.authRedirectURLs) ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        for pattern in auth.redirectURLs
        where !(pattern.hasPrefix("http://") || pattern.hasPrefix("https://")) || pattern.contains(where: \.isWhitespace) {
            problems.add(.authRedirectURLs, "must be comma-separated http:// or https:// URLs (with * or ** wildcards)", quoted(pattern))
        }
        auth.refreshesPerIP = integer(.authRateLimitTokenRefresh, &problems)
        auth.verificationsPerIP = integer(.authRateLimitVerify, &problems)
        auth.mailRequestsPerIP = integer(.authRateLimitOTP, &problems)
        auth.mfaAttemptsPerIP = integer(.authRateLimitMFA, &problems)
        auth.anonymousSignIns = boolean(.authAnonymous, &problems) ?? false
        auth.secureEmailChange = boolean(.authSecureEmailChange, &problems) ?? true
        auth.anonymousSignInsPerIP = integer(.authRateLimitAnonymous, &problems)
        for entry in (value(.trustedProxies) ?? "").split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) })
        where !entry.isEmpty {
            if let network = IPNetwork(entry) {
                auth.trustedProxies.append(network)
            } else {
                problems.add(.trustedProxies, "must be comma-separated IP addresses or CIDR ranges", quoted(entry))
            }
        }
        auth.otpLifetime = .seconds(integer(.otpExpiry, &problems))
        auth.emailsPerHour = integer(.emailRateLimit, &problems)
        auth.emailInterval = .seconds(integer(.emailInterval, &problems))
        auth.passwordMinLength = integer(.authPasswordMinLength, &problems)
        auth.passwordRequiredCharacters = Self.characterSets(value(.authPasswordRequiredCharacters) ?? "")
        auth.signupDisabled = boolean(.authDisableSignup, &problems) ?? false
        auth.securePasswordChange = boolean(.authSecurePasswordChange, &problems) ?? true
        if let hook = value(.authAccessTokenHook) {
            auth.accessTokenHook = HookFunction(uri: hook)
            if auth.accessTokenHook == nil {
                problems.add(.authAccessTokenHook, "must be pg-functions://<database>/<schema>/<function>", quoted(hook))
            }
        }
        auth.oauthServerEnabled = boolean(.authOAuthServer, &problems) ?? false
        if let path = value(.authOAuthAuthorizationPath) {
            auth.oauthAuthorizationPath = path.hasPrefix("/") ? path : "/" + path
            if path.contains(where: { $0.isWhitespace || $0 == "?" || $0 == "#" }) || path.contains("//") {
                problems.add(
                    .authOAuthAuthorizationPath, "must be a path such as /oauth/consent (no query, fragment or host)", quoted(path))
            }
        }
        auth.passkeysEnabled = boolean(.authPasskeys, &problems) ?? false
        auth.mfaWebAuthnEnabled = boolean(.authMFAWebAuthn, &problems) ?? false
        let site = URLComponents(string: auth.siteURL)
        auth.webauthnRPID = value(.webauthnRPID) ?? site?.host ?? "localhost"
        if auth.webauthnRPID.isEmpty || auth.webauthnRPID.contains(where: { $0.isWhitespace || $0 == "/" || $0 == ":" }) {
            problems.add(.webauthnRPID, "must be a domain such as example.com (no scheme, port or path)", quoted(auth.webauthnRPID))
        }
        auth.webauthnRPName = value(.webauthnRPName) ?? ConfigVariable.webauthnRPName.setting.defaultText
        if let origins = value(.webauthnRPOrigins) {
            auth.webauthnOrigins = origins.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            for origin in auth.webauthnOrigins
            where !Self.isAbsoluteWebURL(origin) || URLComponents(string: origin).map({ !$0.path.isEmpty || $0.query != nil }) ?? true {
                problems.add(.webauthnRPOrigins, "must be comma-separated origins such as https://app.example.com", quoted(origin))
            }
        } else if let site, let scheme = site.scheme, let host = site.host {
            auth.webauthnOrigins = ["\(scheme)://\(host)" + (site.port.map { ":\($0)" } ?? "")]
        }
        auth.externalProviders = ExternalProvider.load(from: environment) { variable, rule, observed in
            problems.add(label: variable, rule, observed)
        }
        let mail = mailSettings(mode: mode, autoconfirm: auth.autoconfirm, &problems)

        let maxRows = integer(.maxRows, &problems)
        let restMaxBodyBytes = integer(.restMaxBodyBytes, &problems)
        let dbPlanEnabled = choice(.dbPlanEnabled, &problems, as: BooleanChoice.self) == .true
        let dbAggregatesEnabled = choice(.dbAggregatesEnabled, &problems, as: BooleanChoice.self) == .true
        let dbTxEnd = choice(.dbTxEnd, &problems, as: TransactionEnd.self) ?? .commit
        let dbSchemas = (value(.dbSchemas) ?? "public").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        if dbSchemas.isEmpty || Set(dbSchemas).count != dbSchemas.count
            || !dbSchemas.allSatisfy({ !$0.isEmpty && $0.count <= 63 && $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" } })
        {
            problems.add(.dbSchemas, "must be distinct schema names (letters, digits, _), comma-separated", quoted(value(.dbSchemas) ?? ""))
        }
        let statementTimeout = Duration.milliseconds(integer(.statementTimeout, &problems))
        let poolSize = integer(.poolSize, &problems, computedDefault: Self.defaultPoolSize)
        let acquireTimeout = Duration.milliseconds(integer(.acquireTimeout, &problems))
        let instanceID = value(.instanceID) ?? "\(ProcessInfo.processInfo.hostName):\(port)"
        if instanceID.isEmpty || instanceID.count > 200 {
            problems.add(.instanceID, "must be 1 to 200 characters", quoted(instanceID))
        }
        let replaySeconds = integer(.realtimeReplaySeconds, &problems)

        // Secrets: production must configure strong ones; development may generate the JWT secret.
        var jwtSecret: Secret?
        var generated = false
        if let text = value(.jwtSecret) {
            if let weakness = SecretStrength.weakness(of: text) {
                problems.add(.jwtSecret, weakness, "a value of \(text.count) characters")
            } else {
                jwtSecret = Secret(text)
            }
        } else if mode.generatesSecrets {
            do {
                jwtSecret = Secret(try developmentSecret(dataDirectory))
                generated = true
            } catch {
                problems.add(.dataDirectory, "must be a writable directory to keep the generated JWT secret", "\(error)")
            }
        } else {
            problems.add(.jwtSecret, "is required in production (at least \(SecretStrength.minimumLength) random characters)")
        }

        var keys: (anon: String, service: String)?
        if let secret = jwtSecret {
            keys = await apiKeys(secret: secret, mode: mode, problems: &problems)
        } else if mode == .production {
            // Without a secret the keys cannot be checked, but their absence is still worth reporting now.
            for variable in [ConfigVariable.anonKey, .serviceRoleKey] where value(variable) == nil {
                problems.add(variable, "is required in production")
            }
        }

        var backup = BackupSettings(
            interval: nil, retention: integer(.backupRetention, &problems),
            directory: backupDirectory(dataDirectory: dataDirectory))
        if let text = value(.backupSchedule) {
            if let interval = BackupSettings.interval(parsing: text) {
                backup.interval = interval
            } else {
                problems.add(
                    .backupSchedule, "must be off, hourly, daily, or an interval such as 6h, 30m or 90s (at least 2s)", quoted(text))
            }
        }
        let metricsToken = value(.metricsToken).map(Secret.init)
        if let metricsToken, metricsToken.value.count < 16 {
            problems.add(.metricsToken, "must be at least 16 characters")
        }

        let storageBackend = storageBackend(&problems)

        let imageSettings = ImageSettings(
            sourceBytes: integer(.imageMaxSourceMB, &problems) * 1024 * 1024,
            sourcePixels: integer(.imageMaxMegapixels, &problems) * 1_000_000, dimension: integer(.imageMaxDimension, &problems),
            cacheBytes: Int64(integer(.imageCacheMB, &problems)) << 20, library: value(.imageLibrary) ?? "libvips.so.42")

        let allowPrivate = (value(.netAllowPrivate) ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        for entry in allowPrivate
        where IPNetwork(entry) == nil && !entry.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" }) {
            problems.add(.netAllowPrivate, "lists host names, addresses and CIDR networks, comma-separated", quoted(entry))
        }
        let netMaxAttempts = integer(.netMaxAttempts, &problems)
        let cronJobTimeout = integer(.cronJobTimeout, &problems)
        var webhookSecret: Secret?
        if let text = value(.webhookSecret) {
            let encoded = text.hasPrefix("whsec_") ? String(text.dropFirst("whsec_".count)) : text
            if let key = Data(base64Encoded: encoded), (24...64).contains(key.count) {
                webhookSecret = Secret(encoded)
            } else {
                problems.add(.webhookSecret, "must be whsec_ followed by the base64 of 24 to 64 random bytes")
            }
        }

        guard problems.isEmpty, let runtime, let database, let jwtSecret, let keys else {
            throw ConfigurationError(problems: problems.list)
        }
        var config = StriveConfig(
            environment: runtime,
            host: host,
            port: port,
            publicURL: publicURL,
            databaseSettings: database,
            storageDirectory: storageDirectory,
            logLevel: logLevel,
            jwtSecret: jwtSecret,
            apiKeys: APIKeys(anon: keys.anon, serviceRole: Secret(keys.service)),
            jwtSecretWasGenerated: generated,
            auth: auth,
            maxRows: maxRows,
            restMaxBodyBytes: restMaxBodyBytes,
            dbPlanEnabled: dbPlanEnabled,
            dbSchemas: dbSchemas,
            dbAggregatesEnabled: dbAggregatesEnabled,
            dbTxEnd: dbTxEnd,
            statementTimeout: statementTimeout,
            poolSize: poolSize,
            acquireTimeout: acquireTimeout,
            instanceID: instanceID,
            realtimeReplayWindow: .seconds(replaySeconds),
            mail: mail,
            metricsToken: metricsToken,
            backup: backup,
            storageBackend: storageBackend
        )
        config.imageSettings = imageSettings
        config.cronJobTimeout = .seconds(cronJobTimeout)
        config.outbound = OutboundSettings(allowPrivate: allowPrivate, maxAttempts: netMaxAttempts, signingSecret: webhookSecret)
        return config
    }

    /// `STRIVE_STORAGE_BACKEND` and, for `s3`, the bucket it needs (every missing piece reported).
    private func storageBackend(_ problems: inout Problems) -> StorageBackend {
        // Checked whatever the backend: a wrong value is reported before someone switches to s3.
        let pathStyle = boolean(.s3ForcePathStyle, &problems) ?? false
        let partSize = integer(.s3PartSize, &problems) << 20
        guard choice(.storageBackend, &problems, as: StorageBackendKind.self) == .s3 else { return .local }
        let region = value(.s3Region) ?? ConfigVariable.s3Region.setting.defaultText
        if region.isEmpty || region.contains(where: { !($0.isLetter || $0.isNumber || $0 == "-") }) {
            problems.add(.s3Region, "must be a region name such as us-east-1", quoted(region))
        }
        let endpoint = value(.s3Endpoint) ?? "https://s3.\(region).amazonaws.com"
        if let url = URLComponents(string: endpoint) {
            if !["http", "https"].contains(url.scheme?.lowercased() ?? "") || (url.host ?? "").isEmpty
                || !(url.path.isEmpty || url.path == "/")
                || url.query != nil
            {
                problems.add(.s3Endpoint, "must be an http:// or https:// URL without a path", quoted(endpoint))
            }
        } else {
            problems.add(.s3Endpoint, "must be an http:// or https:// URL without a path", quoted(endpoint))
        }
        let bucket = value(.s3Bucket) ?? ""
        if bucket.isEmpty {
            problems.add(.s3Bucket, "is required with STRIVE_STORAGE_BACKEND=s3")
        } else if bucket.count < 3 || bucket.count > 63
            || bucket.contains(where: { !($0.isLowercase || $0.isNumber || $0 == "-" || $0 == ".") || !$0.isASCII })
        {
            problems.add(.s3Bucket, "must be an S3 bucket name (3–63 lowercase letters, digits, dots and hyphens)", quoted(bucket))
        }
        let accessKey = value(.s3AccessKeyID) ?? ""
        if accessKey.isEmpty { problems.add(.s3AccessKeyID, "is required with STRIVE_STORAGE_BACKEND=s3") }
        let secretKey = value(.s3SecretAccessKey) ?? ""
        if secretKey.isEmpty { problems.add(.s3SecretAccessKey, "is required with STRIVE_STORAGE_BACKEND=s3") }
        return .s3(
            S3Settings(
                endpoint: endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint, region: region, bucket: bucket,
                accessKeyID: accessKey, secretAccessKey: Secret(secretKey), forcePathStyle: pathStyle, partSize: partSize))
    }

    private func mailSettings(mode: RuntimeEnvironment, autoconfirm: Bool, _ problems: inout Problems) -> MailSettings {
        var smtp: SMTPURL?
        if let text = value(.smtpURL) {
            do {
                smtp = try SMTPURL(parsing: text)
            } catch {
                problems.add(.smtpURL, error.rule, error.observed)
            }
        }
        if mode == .production {
            if smtp?.security == SMTPURL.Security.none {
                problems.add(.smtpURL, "must use STARTTLS or TLS in production (not starttls=off)")
            }
            if smtp == nil && !autoconfirm {
                problems.add(.smtpURL, "is required in production while sign-ups need confirmation (or set STRIVE_AUTH_AUTOCONFIRM=true)")
            }
        }
        let senderEmail = value(.smtpSenderEmail) ?? ConfigVariable.smtpSenderEmail.setting.defaultText
        if senderEmail.split(separator: "@", omittingEmptySubsequences: false).count != 2
            || senderEmail.contains(where: { $0.isWhitespace || $0 == "<" || $0 == ">" })
        {
            problems.add(.smtpSenderEmail, "must be an email address", quoted(senderEmail))
        }
        let senderName = value(.smtpSenderName) ?? ConfigVariable.smtpSenderName.setting.defaultText
        if senderName.contains(where: { $0 == "\r" || $0 == "\n" }) {
            problems.add(.smtpSenderName, "must be one line", quoted(senderName))
        }
        let caFile = value(.smtpCAFile).map(absolute)
        if let caFile, !FileManager.default.isReadableFile(atPath: caFile) {
            problems.add(.smtpCAFile, "must be a readable PEM file", quoted(caFile))
        }
        let templates = value(.mailTemplatesDirectory).map(absolute)
        var isDirectory: ObjCBool = false
        if let templates, !FileManager.default.fileExists(atPath: templates, isDirectory: &isDirectory) || !isDirectory.boolValue {
            problems.add(.mailTemplatesDirectory, "must be a directory", quoted(templates))
        }
        return MailSettings(smtp: smtp, senderEmail: senderEmail, senderName: senderName, caFile: caFile, templatesDirectory: templates)
    }

    private func boolean(_ variable: ConfigVariable, _ problems: inout Problems) -> Bool? {
        guard let text = value(variable) else { return nil }
        switch text.lowercased() {
        case "true": return true
        case "false": return false
        default:
            problems.add(variable, "must be true or false", quoted(text))
            return nil
        }
    }

    /// GoTrue's notation: sets separated by `:`, `\:` a literal colon, empty sets dropped.
    static func characterSets(_ text: String) -> [String] {
        var sets: [String] = []
        var current = ""
        var escaped = false
        for character in text {
            if escaped {
                current.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == ":" {
                sets.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        sets.append(current)
        return sets.filter { !$0.isEmpty }
    }

    static func isAbsoluteWebURL(_ text: String) -> Bool {
        guard let url = URLComponents(string: text) else { return false }
        return ["http", "https"].contains(url.scheme?.lowercased() ?? "") && !(url.host ?? "").isEmpty
    }

    private func databaseSettings(_ problems: inout Problems) -> DatabaseSettings? {
        let dataDirectory = absolute(value(.dataDirectory) ?? ConfigVariable.dataDirectory.setting.defaultText)
        var location = DatabaseLocation.managed
        var valid = true
        if let text = value(.databaseURL) {
            do {
                location = .external(try DatabaseURL(parsing: text))
            } catch {
                problems.add(.databaseURL, error.rule, error.observed)
                valid = false
            }
        }
        let postgresUser = value(.postgresUser) ?? ConfigVariable.postgresUser.setting.defaultText
        if postgresUser.contains(where: { $0.isWhitespace || $0 == "/" || $0 == ":" }) {
            problems.add(.postgresUser, "must be an operating-system user name", quoted(postgresUser))
            valid = false
        }
        let binDirectory = value(.postgresBinDirectory).map(absolute)
        if let binDirectory, location == .managed {
            var isDirectory: ObjCBool = false
            if !FileManager.default.fileExists(atPath: binDirectory, isDirectory: &isDirectory) || !isDirectory.boolValue {
                problems.add(.postgresBinDirectory, "must be a directory holding initdb, pg_ctl and postgres", quoted(binDirectory))
                valid = false
            }
        }
        let migrationsDirectory = absolute(value(.migrationsDirectory) ?? ConfigVariable.migrationsDirectory.setting.defaultText)
        guard let productSchema = choice(.productSchema, &problems, as: ProductSchema.self) else { return nil }
        guard valid else { return nil }
        return DatabaseSettings(
            dataDirectory: dataDirectory, location: location, postgresUser: postgresUser, postgresBinDirectory: binDirectory,
            migrationsDirectory: migrationsDirectory, productSchema: productSchema)
    }

    /// An integer setting within its declared range, or its declared default (`computedDefault` for the
    /// ones whose default depends on the machine).
    private func integer(_ variable: ConfigVariable, _ problems: inout Problems, computedDefault: Int? = nil) -> Int {
        guard case .integer(let range, let unit, let declared) = variable.setting.kind else {
            preconditionFailure("\(variable.rawValue) is not declared as an integer")
        }
        let fallback = declared ?? computedDefault ?? range.lowerBound
        guard let text = value(variable) else { return fallback }
        guard let parsed = Int(text), range.contains(parsed) else {
            let rule =
                unit == "port"
                ? "must be an integer between \(range.lowerBound) and \(range.upperBound)"
                : "must be an integer number of \(unit) between \(range.lowerBound) and \(range.upperBound)"
            problems.add(variable, rule, quoted(text))
            return fallback
        }
        return parsed
    }

    /// A choice setting as its enumeration; nil (and a problem) when the value is not one of the choices.
    /// A `true`/`false` setting read as a choice.
    private enum BooleanChoice: String {
        case `true`, `false`
    }

    private func choice<Value: RawRepresentable<String>>(
        _ variable: ConfigVariable, _ problems: inout Problems, as: Value.Type
    ) -> Value? {
        guard case .choice(let choices, let declared) = variable.setting.kind else {
            preconditionFailure("\(variable.rawValue) is not declared as a choice")
        }
        let text = value(variable) ?? declared
        guard let parsed = Value(rawValue: text.lowercased()) else {
            problems.add(variable, "must be one of \(choices.joined(separator: ", "))", quoted(text))
            return nil
        }
        return parsed
    }

    private func apiKeys(
        secret: Secret,
        mode: RuntimeEnvironment,
        problems: inout Problems
    ) async -> (anon: String, service: String)? {
        var result: [APIKeys.Role: String] = [:]
        for (variable, role) in [(ConfigVariable.anonKey, APIKeys.Role.anon), (.serviceRoleKey, .serviceRole)] {
            if let key = value(variable) {
                let granted = await APIKeys.role(of: key, secret: secret)
                if granted == role {
                    result[role] = key
                } else {
                    let seen = granted.map { "a key for role \($0.rawValue)" } ?? "a value that is not a JWT signed with STRIVE_JWT_SECRET"
                    problems.add(variable, "must be a JWT signed with STRIVE_JWT_SECRET whose role is \(role.rawValue)", seen)
                }
            } else if mode == .production {
                problems.add(variable, "is required in production (a JWT signed with STRIVE_JWT_SECRET, role \(role.rawValue))", nil)
            } else {
                result[role] = try? await APIKeys.derive(role: role, secret: secret)
            }
        }
        guard let anon = result[.anon], let service = result[.serviceRole] else { return nil }
        return (anon, service)
    }

    /// A flag wins over its variable; an empty variable counts as unset.
    private func value(_ variable: ConfigVariable) -> String? {
        if let override = overrides[variable] { return override.value }
        guard let text = environment[variable.rawValue], !text.isEmpty else { return nil }
        return text
    }

    private func label(_ variable: ConfigVariable) -> String {
        if let flag = overrides[variable]?.flag { return "\(flag) (\(variable.rawValue))" }
        return variable.rawValue
    }

    private func quoted(_ text: String) -> String {
        "'\(text.prefix(80))'"
    }

    private func absolute(_ path: String) -> String {
        Self.absolutePath(path, workingDirectory: workingDirectory)
    }

    /// `path` with `~` expanded, made absolute against `workingDirectory`, `.`/`..` resolved.
    public static func absolutePath(_ path: String, workingDirectory: String = FileManager.default.currentDirectoryPath) -> String {
        let expanded = (path as NSString).expandingTildeInPath
        let joined = expanded.hasPrefix("/") ? expanded : workingDirectory + "/" + expanded
        return URL(fileURLWithPath: joined).standardizedFileURL.path
    }
}

/// The problems found so far, labelled the way the person configured each setting (flag or variable).
struct Problems {
    let labels: (ConfigVariable) -> String
    private(set) var list: [ConfigurationProblem] = []

    init(labels: @escaping (ConfigVariable) -> String) {
        self.labels = labels
    }

    var isEmpty: Bool { list.isEmpty }

    mutating func add(_ variable: ConfigVariable, _ rule: String, _ observed: String? = nil) {
        list.append(.init(variable: labels(variable), rule: rule, observed: observed))
    }

    /// A problem with a variable outside `ConfigVariable` (a provider's `STRIVE_AUTH_EXTERNAL_<NAME>_<FIELD>`).
    mutating func add(label: String, _ rule: String, _ observed: String?) {
        list.append(.init(variable: label, rule: rule, observed: observed))
    }
}
