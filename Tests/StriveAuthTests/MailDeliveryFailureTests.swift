import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import StriveCore
import StriveDatabase
import StriveMail
import StriveTestSupport
import Testing

/// What the outbox does when a mail cannot be sent, and how the SMTP client tells the reasons apart.
@Suite("Mail delivery failures")
struct MailDeliveryFailureTests {
    let logger: Logger = {
        var logger = Logger(label: "test.mail")
        logger.logLevel = .critical
        return logger
    }()

    static func settings(_ smtp: SMTPURL?, caFile: String? = nil) -> MailSettings {
        MailSettings(smtp: smtp, senderEmail: "noreply@strive.test", senderName: "Strive", caFile: caFile, templatesDirectory: nil)
    }

    /// Queues one mail, runs delivery until `done` says the outbox row is settled, and returns that row:
    /// (sent, failed, last error, seconds until the next attempt).
    func deliver(
        to recipient: String, template: String = "confirmation", settings: MailSettings,
        until done: @escaping @Sendable (Bool, Bool, String?) -> Bool
    ) async throws -> (sent: Bool, failed: Bool, error: String?, retryIn: Double) {
        let database = try await TestCluster.shared.makeDatabase()
        return try await database.withDatabase { db in
            let id = try await database.withOwnerConnection { connection in
                try await connection.rows(
                    """
                    insert into auth.mail_outbox (recipient, template, variables)
                    values (\(recipient), \(template), '{"confirmation_url": "http://app.test/x", "token": "123456"}') returning id
                    """, logger: logger
                ).first?.decode(Int64.self) ?? 0
            }
            let delivery = MailDelivery(
                database: db, settings: settings, templates: try MailTemplates.load(directory: nil), pollInterval: .milliseconds(200),
                logger: logger)
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await delivery.run() }
                defer { group.cancelAll() }
                let deadline = ContinuousClock.now + .seconds(20)
                while true {
                    let row = try await database.withOwnerConnection { connection in
                        try await connection.rows(
                            """
                            select sent_at is not null, failed_at is not null, last_error,
                                   extract(epoch from next_attempt_at - now())::float8
                            from auth.mail_outbox where id = \(id)
                            """, logger: logger
                        ).first?.decode((Bool, Bool, String?, Double).self)
                    }
                    if let row, done(row.0, row.1, row.2) { return (row.0, row.1, row.2, row.3) }
                    guard ContinuousClock.now < deadline else { throw DeliveryNotSettled(row: "\(String(describing: row))") }
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
        }
    }

    struct DeliveryNotSettled: Error, CustomStringConvertible {
        let row: String
        var description: String { "the outbox row did not settle: \(row)" }
    }

    @Test func anUnreachableServerIsRetriedLater() async throws {
        let port = try #require(LoopbackPort.free())
        let smtp = SMTPURL(host: "127.0.0.1", port: port, username: nil, password: nil, security: .none)
        let row = try await deliver(to: "ada@strive.test", settings: Self.settings(smtp)) { _, _, error in error != nil }
        #expect(!row.sent && !row.failed)
        #expect(row.error?.contains("unreachable") == true, "\(row.error ?? "")")
        #expect(row.retryIn > 5, "the first retry waits 10 s")
    }

    @Test func aRefusedRecipientFailsTheMailForGood() async throws {
        let server = try await TestMailServer.start(plain: true)
        defer { server.stop() }
        let smtp = SMTPURL(host: "127.0.0.1", port: server.port, username: nil, password: nil, security: .none)
        let row = try await deliver(to: "nobody@rejected.invalid", settings: Self.settings(smtp)) { _, failed, _ in failed }
        #expect(!row.sent && row.failed)
        #expect(row.error?.contains("550") == true, "\(row.error ?? "")")
    }

    @Test func aMailOfAnUnknownTemplateFails() async throws {
        let row = try await deliver(to: "ada@strive.test", template: "no_such_template", settings: Self.settings(nil)) { _, failed, _ in
            failed
        }
        #expect(row.failed && row.error?.contains("unknown template") == true)
    }

    @Test func withoutAMailServerTheMailCountsAsSent() async throws {
        let row = try await deliver(to: "ada@strive.test", settings: Self.settings(nil)) { sent, _, _ in sent }
        #expect(row.sent && !row.failed)
    }

    @Test func aServerWithoutSTARTTLSIsRefusedWhenTLSIsRequired() async throws {
        let server = try await TestMailServer.start(plain: true)
        defer { server.stop() }
        let client = SMTPClient(
            server: SMTPURL(host: "127.0.0.1", port: server.port, username: nil, password: nil, security: .startTLS), caFile: nil)
        await #expect {
            try await client.send("Subject: x\r\n\r\nx", from: "a@strive.test", to: "b@strive.test")
        } throws: { error in
            guard let error = error as? MailError, case .tls = error else { return false }
            return !error.permanent && error.description.contains("STARTTLS")
        }
    }

    @Test func credentialsAreNotSentToAServerWithoutAUTH() async throws {
        let server = try await TestMailServer.start(plain: true)
        defer { server.stop() }
        let client = SMTPClient(
            server: SMTPURL(host: "127.0.0.1", port: server.port, username: "user", password: Secret("pw"), security: .none), caFile: nil)
        await #expect(throws: MailError.protocolViolation("the server does not offer AUTH PLAIN")) {
            try await client.send("Subject: x\r\n\r\nx", from: "a@strive.test", to: "b@strive.test")
        }
    }

    @Test func aServerThatNeverGreetsTimesOut() async throws {
        // A listener that accepts and says nothing.
        let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        defer { silent.close(promise: nil) }
        let port = try #require(silent.localAddress?.port)
        let client = SMTPClient(
            server: SMTPURL(host: "127.0.0.1", port: port, username: nil, password: nil, security: .none), caFile: nil,
            timeout: .seconds(1))
        await #expect {
            try await client.send("Subject: x\r\n\r\nx", from: "a@strive.test", to: "b@strive.test")
        } throws: { error in
            guard let error = error as? MailError, case .timedOut = error else { return false }
            return error.description.contains("did not answer in time")
        }
    }
}
