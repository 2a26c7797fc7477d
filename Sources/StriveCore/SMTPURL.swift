import Foundation

/// `STRIVE_SMTP_URL`: where mail goes and how to log in.
///
/// `smtp://user:password@host:587` speaks STARTTLS and refuses a server that does not offer it;
/// `smtps://…:465` starts with TLS; `smtp://host:1025?starttls=off` is plain text, for a local relay in
/// development only. User and password are percent-decoded.
public struct SMTPURL: Sendable, Equatable {
    public enum Security: String, Sendable, Equatable {
        case startTLS = "starttls"
        case implicitTLS = "tls"
        case none
    }

    public var host: String
    public var port: Int
    public var username: String?
    public var password: Secret?
    public var security: Security

    public struct ParseError: Error, Sendable, Equatable {
        public let rule: String
        public let observed: String?
    }

    public init(host: String, port: Int, username: String?, password: Secret?, security: Security) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.security = security
    }

    public init(parsing text: String) throws(ParseError) {
        let form = "must look like smtp://user:password@host:587 (STARTTLS) or smtps://user:password@host:465"
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased() else {
            throw ParseError(rule: form, observed: "text that is not a URL")
        }
        guard let host = components.host, !host.isEmpty else { throw ParseError(rule: form, observed: "no host") }
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }) { $1 }
        switch scheme {
        case "smtp":
            security = query["starttls"]?.lowercased() == "off" ? .none : .startTLS
            port = components.port ?? 587
        case "smtps":
            security = .implicitTLS
            port = components.port ?? 465
        default:
            throw ParseError(rule: form, observed: "scheme '\(scheme)'")
        }
        guard (1...65535).contains(port) else { throw ParseError(rule: form, observed: "port \(port)") }
        self.host = host
        username = components.percentEncodedUser.flatMap { $0.removingPercentEncoding }.flatMap { $0.isEmpty ? nil : $0 }
        password = components.percentEncodedPassword.flatMap { $0.removingPercentEncoding }.map(Secret.init)
    }

    /// Host and port, for messages. Never includes credentials.
    public var displayLocation: String { "\(host):\(port)" }
}

/// How Strive sends mail: `STRIVE_SMTP_*` and `STRIVE_MAIL_TEMPLATES_DIR`.
public struct MailSettings: Sendable, Equatable {
    /// Nil: no mail server; development logs each message's links instead of sending it.
    public var smtp: SMTPURL?
    public var senderEmail: String
    public var senderName: String
    /// PEM certificates to trust for the mail server, instead of the system's.
    public var caFile: String?
    /// Where `<template>.subject`, `.html` and `.txt` files replace the built-in templates.
    public var templatesDirectory: String?

    public init(smtp: SMTPURL?, senderEmail: String, senderName: String, caFile: String?, templatesDirectory: String?) {
        self.smtp = smtp
        self.senderEmail = senderEmail
        self.senderName = senderName
        self.caFile = caFile
        self.templatesDirectory = templatesDirectory
    }
}
