import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import StriveCore
import StriveDatabase

/// Delivers `auth.mail_outbox` on its own task, so a slow or absent mail server never holds a request:
/// woken by `strive_mail` notifications (and a poll for retries), it claims due mails with SKIP LOCKED —
/// every instance may run it — renders them, sends them, and records the outcome. A 4xx reply or a lost
/// connection is retried with back-off (5 attempts); a 5xx reply fails the mail. Without a mail server
/// (development), each mail's variables — the link and the code — are logged instead.
public struct MailDelivery: Service {
    static let channel = "strive_mail"
    static let maximumAttempts = 5

    let database: Database
    let settings: MailSettings
    let templates: MailTemplates
    let client: SMTPClient?
    let pollInterval: Duration
    let logger: Logger

    public init(database: Database, settings: MailSettings, templates: MailTemplates, pollInterval: Duration = .seconds(5), logger: Logger)
    {
        self.database = database
        self.settings = settings
        self.templates = templates
        self.client = settings.smtp.map { SMTPClient(server: $0, caFile: settings.caFile) }
        self.pollInterval = pollInterval
        self.logger = logger
    }

    public func run() async throws {
        await database.runOutbox(channel: Self.channel, pollInterval: pollInterval, logger: logger) { await deliverDue() }
    }

    /// Sends every mail that is due, a few at a time, until none is left.
    func deliverDue() async {
        while !Task.isCancelled {
            let batch: [Queued]
            do {
                batch = try await claim(limit: 10)
            } catch {
                logger.warning("could not read the mail outbox", metadata: ["error": "\(String(reflecting: error))"])
                return
            }
            if batch.isEmpty { return }
            for mail in batch { await deliver(mail) }
        }
    }

    struct Queued: Sendable {
        let id: Int64
        let recipient: String
        let template: String
        let variables: [String: String]
        let attempts: Int
    }

    /// Takes up to `limit` due mails and moves their next attempt into the future, so another instance
    /// does not send them too while this one is at it (a crash mid-send retries them later).
    private func claim(limit: Int) async throws -> [Queued] {
        try await database.withServiceRoleTransaction(method: "MAIL", path: "outbox", logger: logger) { connection in
            try await connection.rows(
                """
                update auth.mail_outbox o set attempts = o.attempts + 1, next_attempt_at = now() + interval '2 minutes'
                where o.id in (select id from auth.mail_outbox
                               where sent_at is null and failed_at is null and next_attempt_at <= now()
                               order by id limit \(limit) for update skip locked)
                returning o.id, o.recipient, o.template, coalesce(o.variables, '{}')::text, o.attempts
                """, logger: logger
            ).map { row in
                let (id, recipient, template, variablesText, attempts) = try row.decode((Int64, String, String, String, Int).self)
                let variables = (try? JSONDecoder().decode([String: String].self, from: Data(variablesText.utf8))) ?? [:]
                return Queued(id: id, recipient: recipient, template: template, variables: variables, attempts: attempts)
            }
        }
    }

    private func deliver(_ mail: Queued) async {
        var metadata: Logger.Metadata = ["mail_id": "\(mail.id)", "template": "\(mail.template)", "attempt": "\(mail.attempts)"]
        guard let template = MailTemplate(rawValue: mail.template) else {
            await record(mail.id, outcome: .failed("unknown template \(mail.template)"))
            return
        }
        guard let client else {
            // Development without a mail server: the link is what a developer needs.
            metadata["link"] = "\(mail.variables["confirmation_url"] ?? "")"
            metadata["code"] = "\(mail.variables["token"] ?? "")"
            logger.notice("mail not sent (no STRIVE_SMTP_URL); its link and code", metadata: metadata)
            await record(mail.id, outcome: .sent)
            return
        }
        let rendered = templates.render(template, mail.variables)
        let message = MailMessage(
            senderName: settings.senderName, senderEmail: settings.senderEmail, recipient: mail.recipient,
            subject: rendered.subject, text: rendered.text, html: rendered.html)
        let started = ContinuousClock.now
        do {
            try await client.send(message.formatted(), from: settings.senderEmail, to: mail.recipient)
            metadata["duration_ms"] = "\((ContinuousClock.now - started).components.attoseconds / 1_000_000_000_000_000)"
            logger.info("mail sent", metadata: metadata)
            await record(mail.id, outcome: .sent)
        } catch {
            metadata["error"] = "\(error)"
            if error.permanent || mail.attempts >= Self.maximumAttempts {
                logger.error("mail could not be delivered; giving up", metadata: metadata)
                await record(mail.id, outcome: .failed(error.description))
            } else {
                logger.warning("mail delivery failed; will retry", metadata: metadata)
                await record(mail.id, outcome: .retry(error.description, after: Self.backoff(attempt: mail.attempts)))
            }
        }
    }

    /// 10 s, 40 s, 90 s, 160 s between attempts.
    static func backoff(attempt: Int) -> Duration { .seconds(10 * attempt * attempt) }

    enum Outcome {
        case sent
        case retry(String, after: Duration)
        case failed(String)
    }

    private func record(_ id: Int64, outcome: Outcome) async {
        do {
            try await database.withServiceRoleTransaction(method: "MAIL", path: "outbox", logger: logger) { connection in
                switch outcome {
                case .sent:
                    // The link and the code are gone once the mail is; the row stays for the send limits.
                    try await connection.run(
                        "update auth.mail_outbox set sent_at = now(), variables = null, last_error = null where id = \(id)", logger: logger)
                case .retry(let error, let delay):
                    let seconds = Int(delay.components.seconds)
                    try await connection.run(
                        """
                        update auth.mail_outbox set last_error = \(error), next_attempt_at = now() + make_interval(secs => \(seconds))
                        where id = \(id)
                        """, logger: logger)
                case .failed(let error):
                    try await connection.run(
                        "update auth.mail_outbox set failed_at = now(), variables = null, last_error = \(error) where id = \(id)",
                        logger: logger)
                }
                // Rows older than a day serve no limit any more.
                try await connection.run(
                    "delete from auth.mail_outbox where created_at < now() - interval '1 day' and (sent_at is not null or failed_at is not null)",
                    logger: logger)
            }
        } catch {
            logger.error("could not record a mail's delivery", metadata: ["mail_id": "\(id)", "error": "\(String(reflecting: error))"])
        }
    }
}
