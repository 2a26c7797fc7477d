import Foundation

/// A mail as it goes over SMTP: RFC 5322 headers and a multipart/alternative body with a plain-text and an
/// HTML part, both UTF-8 in base64 (so no line of the body can be too long or start a new header).
public struct MailMessage: Sendable, Equatable {
    public var senderName: String
    public var senderEmail: String
    public var recipient: String
    public var subject: String
    public var text: String
    public var html: String

    public init(senderName: String, senderEmail: String, recipient: String, subject: String, text: String, html: String) {
        self.senderName = senderName
        self.senderEmail = senderEmail
        self.recipient = recipient
        self.subject = subject
        self.text = text
        self.html = html
    }

    /// The message with CRLF line ends. `date` and `id` are parameters so a test can fix them.
    public func formatted(date: Date = Date(), id: UUID = UUID()) -> String {
        let boundary = "strive-" + id.uuidString.lowercased()
        let domain = senderEmail.split(separator: "@").last.map(String.init) ?? "localhost"
        let headers = [
            "From: \(Self.displayName(senderName)) <\(senderEmail)>",
            "To: <\(recipient)>",
            "Subject: \(Self.headerText(subject))",
            "Date: \(Self.rfc5322Date(date))",
            "Message-ID: <\(id.uuidString.lowercased())@\(domain)>",
            "MIME-Version: 1.0",
            "Content-Type: multipart/alternative; boundary=\"\(boundary)\"",
        ]
        var lines = headers + [""]
        for (type, body) in [("text/plain", text), ("text/html", html)] {
            lines += [
                "--\(boundary)", "Content-Type: \(type); charset=utf-8", "Content-Transfer-Encoding: base64", "",
                Data(body.utf8).base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed]),
            ]
        }
        lines.append("--\(boundary)--")
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    /// One line of header text: line breaks become spaces; anything beyond printable ASCII is an RFC 2047
    /// encoded word.
    static func headerText(_ text: String) -> String {
        let line = text.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
        if line.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value < 0x7F }) { return line }
        return "=?utf-8?B?\(Data(line.utf8).base64EncodedString())?="
    }

    /// A display name: a quoted string, or an encoded word when it is not plain ASCII.
    static func displayName(_ name: String) -> String {
        let line = name.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
        if line.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value < 0x7F }) {
            return "\"" + line.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        return "=?utf-8?B?\(Data(line.utf8).base64EncodedString())?="
    }

    static func rfc5322Date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        return formatter.string(from: date)
    }
}
