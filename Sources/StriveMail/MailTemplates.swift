import Foundation
import Mustache

/// The mails auth sends, as GoTrue names them.
public enum MailTemplate: String, CaseIterable, Sendable {
    case confirmation
    case recovery
    case magicLink = "magic_link"
    case invite
    case emailChange = "email_change"
    case reauthentication
}

/// Subject, plain text and HTML of each mail, as Mustache templates: the built-in ones, each part
/// replaceable by a file `<template>.subject`, `<template>.txt` or `<template>.html` in
/// `STRIVE_MAIL_TEMPLATES_DIR`. Variables: `confirmation_url`, `token` (the 6-digit code), `token_hash`,
/// `site_url`, `email`, `redirect_to`; an email change's mails also `new_email` (`email` is then the
/// current address, whichever of the two the mail goes to). HTML escapes `{{…}}`; the subject and text are not HTML, so
/// their built-ins use `{{{…}}}`.
public struct MailTemplates: Sendable {
    struct Parts: Sendable {
        let subject: MustacheTemplate
        let text: MustacheTemplate
        let html: MustacheTemplate
    }

    public struct LoadError: Error, Sendable, CustomStringConvertible {
        public let file: String
        public let reason: String
        public var description: String { "mail template \(file): \(reason)" }
    }

    let parts: [MailTemplate: Parts]

    public static func load(directory: String?) throws(LoadError) -> MailTemplates {
        var parts: [MailTemplate: Parts] = [:]
        for template in MailTemplate.allCases {
            let builtIn = builtIns[template] ?? ("", "", "")
            func part(_ suffix: String, _ fallback: String) throws(LoadError) -> MustacheTemplate {
                var text = fallback
                var file = "built-in \(template.rawValue).\(suffix)"
                if let directory {
                    let path = directory + "/\(template.rawValue).\(suffix)"
                    if FileManager.default.fileExists(atPath: path) {
                        file = path
                        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
                            throw LoadError(file: path, reason: "cannot be read as UTF-8 text")
                        }
                    }
                }
                do { return try MustacheTemplate(string: text) } catch {
                    throw LoadError(file: file, reason: "is not valid Mustache: \(error)")
                }
            }
            parts[template] = Parts(
                subject: try part("subject", builtIn.subject), text: try part("txt", builtIn.text), html: try part("html", builtIn.html))
        }
        return MailTemplates(parts: parts)
    }

    public struct Rendered: Sendable, Equatable {
        public let subject: String
        public let text: String
        public let html: String
    }

    public func render(_ template: MailTemplate, _ variables: [String: String]) -> Rendered {
        guard let parts = parts[template] else { return Rendered(subject: "", text: "", html: "") }
        return Rendered(
            subject: parts.subject.render(variables).trimmingCharacters(in: .whitespacesAndNewlines),
            text: parts.text.render(variables), html: parts.html.render(variables))
    }

    static let builtIns: [MailTemplate: (subject: String, text: String, html: String)] = [
        .confirmation: (
            "Confirm your sign-up",
            """
            Follow this link to confirm your address:
            {{{confirmation_url}}}

            Or enter this code: {{{token}}}

            If you did not sign up, ignore this mail.

            """,
            """
            <h2>Confirm your sign-up</h2>
            <p>Follow this link to confirm your address:</p>
            <p><a href="{{confirmation_url}}">Confirm your address</a></p>
            <p>Or enter this code: <strong>{{token}}</strong></p>
            <p>If you did not sign up, ignore this mail.</p>

            """
        ),
        .recovery: (
            "Reset your password",
            """
            Follow this link to choose a new password:
            {{{confirmation_url}}}

            Or enter this code: {{{token}}}

            If you did not ask for this, ignore this mail: your password stays as it is.

            """,
            """
            <h2>Reset your password</h2>
            <p>Follow this link to choose a new password:</p>
            <p><a href="{{confirmation_url}}">Reset your password</a></p>
            <p>Or enter this code: <strong>{{token}}</strong></p>
            <p>If you did not ask for this, ignore this mail: your password stays as it is.</p>

            """
        ),
        .invite: (
            "You have been invited",
            """
            You have been invited to create an account. Follow this link to accept:
            {{{confirmation_url}}}

            """,
            """
            <h2>You have been invited</h2>
            <p>You have been invited to create an account.</p>
            <p><a href="{{confirmation_url}}">Accept the invitation</a></p>

            """
        ),
        .magicLink: (
            "Your sign-in link",
            """
            Follow this link to sign in:
            {{{confirmation_url}}}

            Or enter this code: {{{token}}}

            """,
            """
            <h2>Your sign-in link</h2>
            <p><a href="{{confirmation_url}}">Sign in</a></p>
            <p>Or enter this code: <strong>{{token}}</strong></p>

            """
        ),
        .emailChange: (
            "Confirm your new address",
            """
            Follow this link to confirm the change of your account's address from {{{email}}} to {{{new_email}}}:
            {{{confirmation_url}}}

            Or enter this code: {{{token}}}

            If you did not ask for this, do not follow the link, and change your password.

            """,
            """
            <h2>Confirm your new address</h2>
            <p>Follow this link to confirm the change of your account's address from {{email}} to {{new_email}}:</p>
            <p><a href="{{confirmation_url}}">Confirm the change</a></p>
            <p>Or enter this code: <strong>{{token}}</strong></p>
            <p>If you did not ask for this, do not follow the link, and change your password.</p>

            """
        ),
        .reauthentication: (
            "Confirm it is you",
            """
            Enter this code to confirm it is you: {{{token}}}

            If you did not ask for this, change your password.

            """,
            """
            <h2>Confirm it is you</h2>
            <p>Enter this code to confirm it is you: <strong>{{token}}</strong></p>
            <p>If you did not ask for this, change your password.</p>

            """
        ),
    ]
}
