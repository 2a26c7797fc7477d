import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import StriveDatabase

/// Two real identity providers on loopback (`Scripts/test-identity-providers.py`, from the repository's
/// `.build-venv`): an OpenID Connect provider (PyPI's oidc-provider-mock) and a GitHub-shaped plain OAuth
/// 2.0 provider (authlib). One pair per test process; tests keep apart by using users of their own.
public final class TestIdentityProviders: Sendable {
    public let oidcPort: Int
    public let githubPort: Int
    private let process: NIOLockedValueBox<Process>
    public static let githubClientID = "github-client"
    public static let githubSecret = "github-secret"

    public struct NotStarted: Error, CustomStringConvertible {
        public let description: String
    }

    public static func shared() async throws -> TestIdentityProviders {
        try await sharedServers.server()
    }

    private static let sharedServers = SharedTestServer { try await TestIdentityProviders.start() }

    static func start() async throws -> TestIdentityProviders {
        guard let oidcPort = LoopbackPort.free(), let githubPort = LoopbackPort.free() else {
            throw NotStarted(description: "no free port")
        }
        let process = try ScriptServer.launch(
            "test-identity-providers.py", ["--oidc-port", String(oidcPort), "--github-port", String(githubPort)],
            installs: "oidc-provider-mock")
        let servers = TestIdentityProviders(oidcPort: oidcPort, githubPort: githubPort, process: process)
        try await ScriptServer.waitUntilReady(
            process, "the identity providers on ports \(oidcPort) and \(githubPort)", answers: { await servers.answer() },
            stop: servers.stop)
        return servers
    }

    private func answer() async -> Bool {
        let browser = TestBrowser()
        let oidc = try? await browser.get(oidcIssuer + "/.well-known/openid-configuration")
        let github = try? await browser.get(githubBase + "/login/oauth/authorize")
        return oidc?.status == 200 && github?.status == 200
    }

    private init(oidcPort: Int, githubPort: Int, process: Process) {
        self.oidcPort = oidcPort
        self.githubPort = githubPort
        self.process = NIOLockedValueBox(process)
    }

    deinit { stop() }

    public func stop() {
        process.withLockedValue { process in
            guard process.isRunning else { return }
            process.terminate()
        }
    }

    public var oidcIssuer: String { "http://127.0.0.1:\(oidcPort)" }
    public var githubBase: String { "http://127.0.0.1:\(githubPort)" }

    /// Sets the OpenID provider's claims for user `subject` (email, email_verified, name, …).
    public func setOIDCUser(_ subject: String, claims: [String: Any]) async throws {
        let body = try JSONSerialization.data(withJSONObject: claims)
        let reply = try await TestBrowser().send(
            .PUT, oidcIssuer + "/users/" + (subject.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? subject),
            body: body, contentType: "application/json")
        guard reply.status == 204 else { throw NotStarted(description: "the OpenID provider refused the user: \(reply.status)") }
    }

    /// Sets the GitHub-shaped provider's user `login`: its numeric id, name and addresses.
    public func setGitHubUser(_ login: String, id: Int, name: String, emails: [(email: String, primary: Bool, verified: Bool)])
        async throws
    {
        let object: [String: Any] = [
            "id": id, "name": name, "emails": emails.map { ["email": $0.email, "primary": $0.primary, "verified": $0.verified] },
        ]
        let reply = try await TestBrowser().send(
            .PUT, githubBase + "/users/" + login, body: try JSONSerialization.data(withJSONObject: object),
            contentType: "application/json")
        guard reply.status == 204 else { throw NotStarted(description: "the GitHub-shaped provider refused the user: \(reply.status)") }
    }

    /// The `STRIVE_AUTH_EXTERNAL_*` variables for a custom OpenID provider `name` and the GitHub-shaped one as `github`.
    public func environment(oidcName: String = "acme", oidcClientID: String = "strive-app") -> [String: String] {
        let prefix = "STRIVE_AUTH_EXTERNAL_" + oidcName.uppercased()
        return [
            prefix + "_CLIENT_ID": oidcClientID, prefix + "_SECRET": "oidc-secret", prefix + "_ISSUER": oidcIssuer,
            "STRIVE_AUTH_EXTERNAL_GITHUB_CLIENT_ID": Self.githubClientID, "STRIVE_AUTH_EXTERNAL_GITHUB_SECRET": Self.githubSecret,
            "STRIVE_AUTH_EXTERNAL_GITHUB_AUTHORIZE_URL": githubBase + "/login/oauth/authorize",
            "STRIVE_AUTH_EXTERNAL_GITHUB_TOKEN_URL": githubBase + "/login/oauth/access_token",
            "STRIVE_AUTH_EXTERNAL_GITHUB_USERINFO_URL": githubBase + "/user",
            "STRIVE_AUTH_EXTERNAL_GITHUB_EMAILS_URL": githubBase + "/user/emails",
        ]
    }
}

/// A browser that follows no redirect on its own: each hop of a sign-in is a request the test makes and checks.
public struct TestBrowser: Sendable {
    public struct Reply: Sendable {
        public let status: Int
        public let location: String?
        public let body: String
    }

    public init() {}

    public func get(_ url: String) async throws -> Reply {
        try await send(.GET, url, body: nil, contentType: nil)
    }

    /// Submits a form, as a browser does when the user presses a button.
    public func post(_ url: String, form: [(String, String)]) async throws -> Reply {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        let body = form.map { "\($0)=\($1.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }.joined(separator: "&")
        return try await send(.POST, url, body: Data(body.utf8), contentType: "application/x-www-form-urlencoded")
    }

    public func send(_ method: HTTPMethod, _ url: String, body: Data?, contentType: String?) async throws -> Reply {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
        if let body { request.body = .bytes(ByteBuffer(data: body)) }
        let response = try await Self.client.execute(request, timeout: .seconds(30))
        let buffer = try await response.body.collect(upTo: 4 * 1024 * 1024)
        return Reply(
            status: Int(response.status.code), location: response.headers.first(name: "Location"),
            body: String(decoding: Data(buffer: buffer), as: UTF8.self))
    }

    private static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()
}
