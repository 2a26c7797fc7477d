import HTTPTypes
import Hummingbird
import NIOCore

/// `/console`: the operators' web console, served from the binary (no CDN, works offline). A static page
/// and script that sign in with an account's email and password and then act only through Strive's own
/// APIs with that account's token; what it may do is what `app.is_admin()` lets the token do.
struct ConsoleRoutes: Sendable {
    /// The anon key the page signs in with (public: it is in every client app too).
    let anonKey: String
    let version: String

    /// Scripts and styles from this origin only, and no inline script: a value shown on a page cannot run.
    static let securityHeaders: HTTPFields = [
        .contentSecurityPolicy:
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        .xContentTypeOptions: "nosniff",
        .referrerPolicy: "no-referrer",
        .cacheControl: "no-store",
    ]

    func register(on router: some RouterMethods<StriveRequestContext>) {
        router.get("/console") { _, _ in Self.asset(ConsoleAssets.html, type: "text/html; charset=utf-8") }
        router.get("/console/console.js") { _, _ in Self.asset(ConsoleAssets.script, type: "text/javascript; charset=utf-8") }
        router.get("/console/console.css") { _, _ in Self.asset(ConsoleAssets.style, type: "text/css; charset=utf-8") }
        router.get("/console/config.json") { _, _ in
            Self.asset(#"{"anon_key":"\#(anonKey)","version":"\#(version)"}"#, type: "application/json")
        }
    }

    static func asset(_ text: String, type: String) -> Response {
        var headers = securityHeaders
        headers[.contentType] = type
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

extension HTTPField.Name {
    static let referrerPolicy = Self("Referrer-Policy")!
}
