import Foundation
import NIOConcurrencyHelpers
import StriveDatabase

/// A real SMTP server for a test (aiosmtpd, `Scripts/test-smtp-server.py`, from the repository's
/// `.build-venv`): STARTTLS with a fresh self-signed certificate, AUTH required, every message saved as a
/// file this type reads back.
public final class TestMailServer: Sendable {
    public let port: Int
    public let folder: String
    public static let user = "strive-test"
    public static let password = "mail p@ss"
    private let process: NIOLockedValueBox<Process>

    public struct NotStarted: Error, CustomStringConvertible {
        public let description: String
    }

    /// One server for every test of the process that needs an ordinary one (tests tell their mail apart
    /// by recipient): starting one per test costs a Python interpreter and an RSA key each, a burst that
    /// starves the rest of the suite on two cores.
    public static func shared() async throws -> TestMailServer {
        try await sharedServer.server()
    }

    private static let sharedServer = SharedTestServer { try await TestMailServer.start() }

    /// Starts a server of the test's own; `delay` holds each DATA reply that long (a slow mail server);
    /// `plain` offers neither STARTTLS nor AUTH (a local relay).
    public static func start(delay: Double = 0, plain: Bool = false) async throws -> TestMailServer {
        let root = Repository.root
        let python = Repository.python
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw NotStarted(
                description:
                    "no \(python): run `python3 -m venv .build-venv && .build-venv/bin/pip install supabase==2.34.1 aiosmtpd==1.4.6` (Scripts/test does)"
            )
        }
        guard let port = LoopbackPort.free() else { throw NotStarted(description: "no free port") }
        let folder = NSTemporaryDirectory() + "strive-mail-" + UUID().uuidString.prefix(8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments =
            [
                root.appendingPathComponent("Scripts/test-smtp-server.py").path, "--port", String(port), "--folder", folder, "--user", user,
                "--password", password, "--delay", String(delay),
            ] + (plain ? ["--plain"] : [])
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = Pipe()
        try process.run()
        let server = TestMailServer(port: port, folder: folder, process: process)
        // The script writes `ready` once it listens.
        let deadline = ContinuousClock.now + .seconds(20)
        while !FileManager.default.fileExists(atPath: folder + "/ready") {
            guard process.isRunning, ContinuousClock.now < deadline else {
                server.stop()
                let said = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
                throw NotStarted(description: "the test mail server did not start: \(said)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return server
    }

    private init(port: Int, folder: String, process: Process) {
        self.port = port
        self.folder = folder
        self.process = NIOLockedValueBox(process)
    }

    deinit { stop() }

    public func stop() {
        process.withLockedValue { process in
            if process.isRunning { process.terminate() }
        }
    }

    /// `STRIVE_SMTP_URL` and `STRIVE_SMTP_CA_FILE` for a Strive that sends here.
    public var environment: [String: String] {
        let password = Self.password.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        return ["STRIVE_SMTP_URL": "smtp://\(Self.user):\(password)@127.0.0.1:\(port)", "STRIVE_SMTP_CA_FILE": certificate]
    }

    public var certificate: String { folder + "/cert.pem" }

    /// Every message received so far for `recipient`, oldest first.
    public func messages(to recipient: String) -> [ReceivedMail] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".eml") }.sorted()
        return names.compactMap { name in
            guard let data = FileManager.default.contents(atPath: folder + "/" + name) else { return nil }
            let mail = ReceivedMail(raw: String(decoding: data, as: UTF8.self))
            return mail.envelopeTo == recipient.lowercased() ? mail : nil
        }
    }

    /// Waits until `recipient` has received `count` messages and returns the last of them.
    public func mail(to recipient: String, number count: Int = 1, timeout: Duration = .seconds(15)) async throws -> ReceivedMail {
        let deadline = ContinuousClock.now + timeout
        while true {
            let received = messages(to: recipient)
            if received.count >= count { return received[count - 1] }
            guard ContinuousClock.now < deadline else {
                throw NotStarted(description: "\(recipient) received \(received.count) of \(count) mail(s) in \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(25))
        }
    }
}

/// One saved message: the headers the test server wrote, the message's own headers, and its decoded parts.
public struct ReceivedMail: Sendable {
    public let raw: String
    public var headers: [String: String] = [:]
    public var text = ""
    public var html = ""

    init(raw: String) {
        self.raw = raw
        let normalised = raw.replacingOccurrences(of: "\r\n", with: "\n")
        let sections = normalised.components(separatedBy: "\n\n")
        for line in (sections.first ?? "").split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        guard let type = headers["content-type"], let range = type.range(of: "boundary=\"") else { return }
        let boundary = String(type[range.upperBound...].prefix { $0 != "\"" })
        for part in normalised.components(separatedBy: "--" + boundary).dropFirst() {
            let pieces = part.components(separatedBy: "\n\n")
            guard pieces.count >= 2 else { continue }
            let body = pieces.dropFirst().joined(separator: "\n\n").replacingOccurrences(of: "\n", with: "")
            let decoded = Data(base64Encoded: body).map { String(decoding: $0, as: UTF8.self) } ?? ""
            if pieces[0].contains("text/plain") { text = decoded } else if pieces[0].contains("text/html") { html = decoded }
        }
    }

    public var envelopeTo: String { headers["x-envelope-to"]?.lowercased() ?? "" }
    public var subject: String { headers["subject"] ?? "" }
    public var arrivedOverTLS: Bool { headers["x-tls"] == "yes" }

    /// The link in the plain-text part.
    public var link: String? {
        text.split(whereSeparator: \.isWhitespace).first { $0.hasPrefix("http://") || $0.hasPrefix("https://") }.map(String.init)
    }

    /// The link's `token` parameter: what supabase-js calls `token_hash`.
    public var linkToken: String? {
        guard let link, let items = URLComponents(string: link)?.queryItems else { return nil }
        return items.first { $0.name == "token" }?.value
    }

    /// The 6-digit code: the one the built-in templates give after a colon (six digits elsewhere, in an
    /// address or the link's token, are not it).
    public var code: String? {
        guard let range = text.range(of: #": [0-9]{6}\b"#, options: .regularExpression) else { return nil }
        return String(text[range].suffix(6))
    }
}
