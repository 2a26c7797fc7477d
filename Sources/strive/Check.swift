import ArgumentParser
import Foundation
import Logging
import NIOConcurrencyHelpers
import StriveCore
import StriveRealtime

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `strive check --url URL`: the original team's five deployment scripts as one command. Asks the
/// deployment for its security audit, then probes it end to end with throwaway users and an
/// organization — auth, tenant isolation, notifications, storage, realtime — and removes all it made.
struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Probe a live deployment end to end (audit, auth, isolation, notifications, storage, realtime); exit 1 on any failure.",
        discussion: """
            Needs the deployment's keys: STRIVE_ANON_KEY and STRIVE_SERVICE_ROLE_KEY (or
            --anon-key / --service-key). Creates two throwaway users (check-…@strive-check.invalid)
            and an organization, and deletes everything it created at the end, also after a failure.
            """)

    @Option(help: "The deployment's base URL.") var url = "http://127.0.0.1:54321"
    @Option(name: .customLong("anon-key"), help: "The anon key (default STRIVE_ANON_KEY).") var anonKey: String?
    @Option(name: .customLong("service-key"), help: "The service role key (default STRIVE_SERVICE_ROLE_KEY).") var serviceKey: String?
    @Option(name: .customLong("min-score"), help: "Lowest passing verify score.") var minScore = 100

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let anon = anonKey ?? environment["STRIVE_ANON_KEY"], let service = serviceKey ?? environment["STRIVE_SERVICE_ROLE_KEY"]
        else {
            throw ValidationError("set STRIVE_ANON_KEY and STRIVE_SERVICE_ROLE_KEY (or pass --anon-key and --service-key)")
        }
        let base = url.hasSuffix("/") ? String(url.dropLast()) : url
        let report = CheckReport(colour: isatty(STDOUT_FILENO) == 1 && environment["NO_COLOR"] == nil)
        print("Strive check: \(base)")
        let probe = DeploymentProbe(base: base, anonKey: anon, serviceKey: service, minScore: minScore, logger: makeLogger(level: .warning))
        let started = ContinuousClock.now
        await probe.run(report)
        let failures = report.failures
        print(
            failures == 0
                ? report.paint("All \(report.count) checks passed in \(CheckReport.milliseconds(since: started)).", .green)
                : report.paint("\(failures) of \(report.count) checks failed.", .red))
        if failures > 0 { throw ExitCode(1) }
    }
}

/// Prints one line per check as it ends: mark, name, what was seen, time.
final class CheckReport: Sendable {
    enum Colour: String {
        case green = "32"
        case red = "31"
        case dim = "2"
    }
    let colour: Bool
    private let counts = NIOLockedValueBox((count: 0, failures: 0))

    init(colour: Bool) { self.colour = colour }

    var count: Int { counts.withLockedValue { $0.count } }
    var failures: Int { counts.withLockedValue { $0.failures } }

    func paint(_ text: String, _ colour: Colour) -> String {
        self.colour ? "\u{1B}[\(colour.rawValue)m\(text)\u{1B}[0m" : text
    }

    /// Runs one check; `body` returns what it saw, or throws why it failed.
    func check(_ name: String, _ body: () async throws -> String) async {
        let started = ContinuousClock.now
        let outcome: Result<String, any Error>
        do { outcome = .success(try await body()) } catch { outcome = .failure(error) }
        let time = paint(Self.milliseconds(since: started), .dim)
        let label = name.padding(toLength: 14, withPad: " ", startingAt: 0)
        switch outcome {
        case .success(let detail):
            counts.withLockedValue { $0.count += 1 }
            print("  \(paint("✔", .green)) \(label)\(detail)  \(time)")
        case .failure(let error):
            counts.withLockedValue {
                $0.count += 1
                $0.failures += 1
            }
            print("  \(paint("✘", .red)) \(label)\(paint("\(error)", .red))  \(time)")
        }
    }

    static func milliseconds(since start: ContinuousClock.Instant) -> String {
        let elapsed = ContinuousClock.now - start
        let ms = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        return ms < 1000 ? String(format: "%.0f ms", ms) : String(format: "%.1f s", ms / 1000)
    }
}

/// Why a probe failed, in words an operator can act on.
struct ProbeFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The probes, in order; each builds on what the one before it made. What they create is remembered
/// so `cleanUp` can remove it whatever failed.
final class DeploymentProbe: Sendable {
    let base: String
    let anonKey: String
    let serviceKey: String
    let minScore: Int
    let logger: Logger
    let tag = "check-\(UUID().uuidString.prefix(8).lowercased())"

    struct User: Sendable {
        let id: String
        let email: String
        var token: String
    }

    struct State: Sendable {
        var users: [User] = []
        var organization: String?
        var objects: [(bucket: String, path: String, token: String)] = []
    }
    private let state = NIOLockedValueBox(State())

    init(base: String, anonKey: String, serviceKey: String, minScore: Int, logger: Logger) {
        self.base = base
        self.anonKey = anonKey
        self.serviceKey = serviceKey
        self.minScore = minScore
        self.logger = logger
    }

    func run(_ report: CheckReport) async {
        await report.check("verify") { try await verify() }
        await report.check("auth") { try await authRoundTrip() }
        await report.check("isolation") { try await isolation() }
        await report.check("notifications") { try await notifications() }
        await report.check("storage") { try await storage() }
        await report.check("realtime") { try await realtime() }
        await report.check("cleanup") { try await cleanUp() }
    }

    // MARK: Probes

    func verify() async throws -> String {
        let report = try await send("GET", "/admin/v1/verify", key: serviceKey, bearer: serviceKey, expect: 200)
        let score = report.object["score"] as? Int ?? -1
        let findings = report.object["findings"] as? [[String: Any]] ?? []
        let lints = (report.object["lints_run"] as? [Any])?.count ?? 0
        guard score >= minScore else {
            let names = findings.prefix(5).compactMap { "\($0["lint"] ?? "?") on \($0["object"] ?? "?")" }.joined(separator: "; ")
            throw ProbeFailure("health score \(score)/100 is below \(minScore): \(names)")
        }
        return "health score \(score)/100 (\(lints) lints, \(findings.count) findings)"
    }

    func authRoundTrip() async throws -> String {
        for label in ["owner", "outsider"] {
            let email = "\(tag)-\(label)@strive-check.invalid"
            let password = "check-\(UUID().uuidString)"
            let created = try await send(
                "POST", "/auth/v1/admin/users", key: serviceKey, bearer: serviceKey,
                json: ["email": email, "password": password, "email_confirm": true], expect: 200)
            guard let id = created.object["id"] as? String else { throw ProbeFailure("admin create user answered no id") }
            state.withLockedValue { $0.users.append(User(id: id, email: email, token: "")) }
            let session = try await send(
                "POST", "/auth/v1/token?grant_type=password", key: anonKey, json: ["email": email, "password": password], expect: 200)
            guard let token = session.object["access_token"] as? String, let refresh = session.object["refresh_token"] as? String else {
                throw ProbeFailure("sign-in answered no session")
            }
            let me = try await send("GET", "/auth/v1/user", key: anonKey, bearer: token, expect: 200)
            guard me.object["id"] as? String == id else { throw ProbeFailure("GET /user named another user") }
            let refreshed = try await send(
                "POST", "/auth/v1/token?grant_type=refresh_token", key: anonKey, json: ["refresh_token": refresh], expect: 200)
            guard let fresh = refreshed.object["access_token"] as? String else { throw ProbeFailure("refresh answered no session") }
            state.withLockedValue { state in
                if let index = state.users.firstIndex(where: { $0.id == id }) { state.users[index].token = fresh }
            }
        }
        return "2 throwaway users: created, signed in, GET /user, refreshed"
    }

    func isolation() async throws -> String {
        let (owner, outsider) = try users()
        let organization = try await send(
            "POST", "/rest/v1/rpc/create_organization", key: anonKey, bearer: owner.token,
            json: ["name": "Strive check \(tag)", "slug": tag], expect: 200)
        guard let org = organization.object["id"] as? String else { throw ProbeFailure("create_organization answered no id") }
        state.withLockedValue { $0.organization = org }
        let customer = try await send(
            "POST", "/rest/v1/customers", key: anonKey, bearer: owner.token, json: ["organization_id": org, "name": "Check customer"],
            headers: ["Prefer": "return=representation"], expect: 201)
        guard let id = customer.array.first?["id"] as? String else { throw ProbeFailure("the customer insert returned no row") }
        let seen = try await send("GET", "/rest/v1/customers?id=eq.\(id)&select=id", key: anonKey, bearer: owner.token, expect: 200)
        guard seen.array.count == 1 else { throw ProbeFailure("the owner cannot read the customer it created") }
        let leaked = try await send(
            "GET", "/rest/v1/customers?organization_id=eq.\(org)&select=id", key: anonKey, bearer: outsider.token, expect: 200)
        guard leaked.array.isEmpty else { throw ProbeFailure("an outsider read \(leaked.array.count) of the organization's customers") }
        let anonymous = try await send("GET", "/rest/v1/customers?organization_id=eq.\(org)&select=id", key: anonKey, expect: nil)
        guard anonymous.status >= 400 || anonymous.array.isEmpty else {
            throw ProbeFailure("the anon key read the organization's customers")
        }
        let intruding = try await send(
            "POST", "/rest/v1/customers", key: anonKey, bearer: outsider.token, json: ["organization_id": org, "name": "Intruder"],
            expect: nil)
        guard intruding.status == 403 || intruding.status == 401 else {
            throw ProbeFailure("an outsider's insert into the organization answered \(intruding.status), not 403")
        }
        let changed = try await send(
            "PATCH", "/rest/v1/customers?id=eq.\(id)", key: anonKey, bearer: outsider.token, json: ["name": "Hijacked"],
            headers: ["Prefer": "return=representation"], expect: nil)
        guard changed.status >= 400 || changed.array.isEmpty else { throw ProbeFailure("an outsider changed the organization's customer") }
        return "outsider: 0 rows read, insert \(intruding.status), update changed nothing; anon key: nothing"
    }

    func notifications() async throws -> String {
        let (owner, _) = try users()
        guard let org = state.withLockedValue({ $0.organization }) else { throw ProbeFailure("no organization (isolation failed)") }
        let created = try await send(
            "POST", "/rest/v1/notifications", key: anonKey, bearer: owner.token,
            json: ["user_id": owner.id, "organization_id": org, "title": "Check", "message": "strive check"],
            headers: ["Prefer": "return=representation"], expect: 201)
        guard let id = created.array.first?["id"] as? String else { throw ProbeFailure("the notification insert returned no row") }
        let before = try await send(
            "POST", "/rest/v1/rpc/unread_notification_count", key: anonKey, bearer: owner.token, json: [:], expect: 200)
        guard before.text.trimmingCharacters(in: .whitespacesAndNewlines) == "1" else {
            throw ProbeFailure("unread count is \(before.text), expected 1")
        }
        let marked = try await send(
            "POST", "/rest/v1/rpc/mark_notifications_read", key: anonKey, bearer: owner.token, json: ["ids": [id]], expect: 200)
        guard marked.text.trimmingCharacters(in: .whitespacesAndNewlines) == "1" else {
            throw ProbeFailure("mark read answered \(marked.text)")
        }
        let after = try await send(
            "POST", "/rest/v1/rpc/unread_notification_count", key: anonKey, bearer: owner.token, json: [:], expect: 200)
        guard after.text.trimmingCharacters(in: .whitespacesAndNewlines) == "0" else {
            throw ProbeFailure("unread count after marking read is \(after.text)")
        }
        return "unread 1 → mark read → 0"
    }

    func storage() async throws -> String {
        let (owner, outsider) = try users()
        guard let org = state.withLockedValue({ $0.organization }) else { throw ProbeFailure("no organization (isolation failed)") }
        let bytes = Data("strive check \(tag)".utf8)
        let path = "\(org)/check/\(tag).txt"
        _ = try await send(
            "POST", "/storage/v1/object/attachments/\(path)", key: anonKey, bearer: owner.token, body: bytes,
            headers: ["Content-Type": "text/plain"], expect: 200)
        state.withLockedValue { $0.objects.append((bucket: "attachments", path: path, token: owner.token)) }
        let denied = try await send("GET", "/storage/v1/object/attachments/\(path)", key: anonKey, bearer: outsider.token, expect: nil)
        guard denied.status == 400 || denied.status == 404 || denied.status == 403 else {
            throw ProbeFailure("an outsider downloaded a private object (\(denied.status))")
        }
        let signed = try await send(
            "POST", "/storage/v1/object/sign/attachments/\(path)", key: anonKey, bearer: owner.token, json: ["expiresIn": 60], expect: 200)
        guard let signedURL = signed.object["signedURL"] as? String else { throw ProbeFailure("sign answered no signedURL") }
        let viaSigned = try await send("GET", "/storage/v1" + signedURL, expect: 200)
        guard viaSigned.data == bytes else { throw ProbeFailure("the signed URL served other bytes") }

        let avatar = "\(owner.id)/\(tag).png"
        let png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) + bytes
        _ = try await send(
            "POST", "/storage/v1/object/avatars/\(avatar)", key: anonKey, bearer: owner.token, body: png,
            headers: ["Content-Type": "image/png"], expect: 200)
        state.withLockedValue { $0.objects.append((bucket: "avatars", path: avatar, token: owner.token)) }
        let viaPublic = try await send("GET", "/storage/v1/object/public/avatars/\(avatar)", expect: 200)
        guard viaPublic.data == png else { throw ProbeFailure("the public URL served other bytes") }

        for object in state.withLockedValue({ $0.objects }) {
            _ = try await send(
                "DELETE", "/storage/v1/object/\(object.bucket)/\(object.path)", key: anonKey, bearer: object.token, expect: 200)
        }
        state.withLockedValue { $0.objects = [] }
        let gone = try await send("GET", "/storage/v1/object/public/avatars/\(avatar)", expect: nil)
        guard gone.status == 400 || gone.status == 404 else { throw ProbeFailure("a deleted object still answers \(gone.status)") }
        return "private upload (outsider refused), signed URL, public URL, delete"
    }

    func realtime() async throws -> String {
        let (owner, outsider) = try users()
        guard let org = state.withLockedValue({ $0.organization }) else { throw ProbeFailure("no organization (isolation failed)") }
        let name = "Realtime \(tag)"
        let url = PhoenixClient.realtimeURL(base: base, apikey: anonKey)
        let config: JSONValue = [
            "postgres_changes": [
                ["event": "INSERT", "schema": "public", "table": "customers", "filter": .string("organization_id=eq.\(org)")]
            ]
        ]
        let isTheInsert: @Sendable (PhoenixMessage) -> Bool = { message in
            message.event == "postgres_changes" && message.data["record"]?.objectValue?["name"]?.stringValue == name
        }
        let latency = try await PhoenixClient.connect(url: url, logger: logger) { member in
            try await PhoenixClient.connect(url: url, logger: logger) { stranger in
                for (client, user) in [(member, owner), (stranger, outsider)] {
                    let reply = try await client.join("check", config: config, token: user.token, timeout: .seconds(10))
                    guard reply.status == "ok" else { throw ProbeFailure("the socket's join was refused: \(reply.reason ?? reply.text)") }
                }
                let sent = ContinuousClock.now
                _ = try await self.send(
                    "POST", "/rest/v1/customers", key: self.anonKey, bearer: owner.token, json: ["organization_id": org, "name": name],
                    expect: 201)
                guard await member.first(timeout: .seconds(5), where: isTheInsert) != nil else {
                    throw ProbeFailure("the INSERT did not arrive within 5 s")
                }
                let latency = ContinuousClock.now - sent
                // Long enough for a leak to show: the outsider's socket would have had it by now.
                if await stranger.first(timeout: .milliseconds(500), where: isTheInsert) != nil {
                    throw ProbeFailure("the outsider's socket received the organization's INSERT")
                }
                return latency
            }
        }
        let ms = Double(latency.components.seconds) * 1000 + Double(latency.components.attoseconds) / 1e15
        return String(format: "INSERT delivered to the member in %.0f ms (request included); the outsider got nothing", ms)
    }

    /// Removes everything the probes made; run last, and whatever failed before.
    func cleanUp() async throws -> String {
        let made = state.withLockedValue { $0 }
        for object in made.objects {
            _ = try? await send(
                "DELETE", "/storage/v1/object/\(object.bucket)/\(object.path)", key: anonKey, bearer: object.token, expect: nil)
        }
        if let org = made.organization {
            _ = try await send("DELETE", "/rest/v1/organizations?id=eq.\(org)", key: serviceKey, bearer: serviceKey, expect: 204)
        }
        for user in made.users {
            _ = try await send("DELETE", "/auth/v1/admin/users/\(user.id)", key: serviceKey, bearer: serviceKey, expect: 200)
        }
        state.withLockedValue { $0 = State() }
        return "removed \(made.users.count) users, \(made.organization == nil ? 0 : 1) organization and its rows"
    }

    // MARK: HTTP

    private func users() throws -> (owner: User, outsider: User) {
        let users = state.withLockedValue { $0.users }
        guard users.count == 2, users.allSatisfy({ !$0.token.isEmpty }) else { throw ProbeFailure("no signed-in users (auth failed)") }
        return (users[0], users[1])
    }

    struct Answer {
        let status: Int
        let data: Data
        var text: String { String(decoding: data, as: UTF8.self) }
        var object: [String: Any] { (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:] }
        var array: [[String: Any]] { (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]] ?? [] }
    }

    /// One request; with `expect`, any other status fails the probe, quoting the answer.
    func send(
        _ method: String, _ path: String, key: String? = nil, bearer: String? = nil, json: [String: Any]? = nil, body: Data? = nil,
        headers: [String: String] = [:], expect: Int?
    ) async throws -> Answer {
        guard let url = URL(string: base + path) else { throw ProbeFailure("\(path) is not a valid URL") }
        var request = URLRequest(url: url, timeoutInterval: 15)
        request.httpMethod = method
        if let key { request.setValue(key, forHTTPHeaderField: "apikey") }
        if let bearer { request.setValue("Bearer \(bearer)", forHTTPHeaderField: "Authorization") }
        if let json {
            request.httpBody = try JSONSerialization.data(withJSONObject: json)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        } else if let body {
            request.httpBody = body
        }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw ProbeFailure("\(method) \(path): \(error.localizedDescription)")
        }
        let answer = Answer(status: (response as? HTTPURLResponse)?.statusCode ?? 0, data: data)
        if let expect, answer.status != expect {
            throw ProbeFailure("\(method) \(path.split(separator: "?").first ?? "") answered \(answer.status): \(answer.text.prefix(300))")
        }
        return answer
    }
}
