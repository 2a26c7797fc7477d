import Foundation
import NIOCore
import NIOExtras
import NIOPosix
import NIOSSL
import StriveCore

/// Why a message was not delivered. `permanent` failures (a 5xx reply) are not retried.
public enum MailError: Error, Sendable, CustomStringConvertible, Equatable {
    case unreachable(String)
    case tls(String)
    case rejected(command: String, code: Int, text: String)
    case protocolViolation(String)
    case timedOut(String)

    public var permanent: Bool {
        if case .rejected(_, let code, _) = self { return (500...599).contains(code) }
        return false
    }

    public var description: String {
        switch self {
        case .unreachable(let detail): "the mail server is unreachable: \(detail)"
        case .tls(let detail): "TLS with the mail server failed: \(detail)"
        case .rejected(let command, let code, let text): "the mail server answered \(command) with \(code) \(text)"
        case .protocolViolation(let detail): "the mail server broke the SMTP protocol: \(detail)"
        case .timedOut(let step): "the mail server did not answer in time (\(step))"
        }
    }
}

/// One SMTP delivery per call (RFC 5321): connect, EHLO, STARTTLS (or TLS from the start), AUTH PLAIN,
/// MAIL FROM, RCPT TO, DATA, QUIT. A new connection per message keeps the client stateless; auth mail is
/// a few messages a minute.
public struct SMTPClient: Sendable {
    public let server: SMTPURL
    let tls: TLSConfiguration
    let timeout: TimeAmount
    let eventLoopGroup: any EventLoopGroup

    public init(
        server: SMTPURL, caFile: String?, timeout: TimeAmount = .seconds(30),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.server = server
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .fullVerification
        if let caFile { tls.trustRoots = .file(caFile) }
        self.tls = tls
        self.timeout = timeout
        self.eventLoopGroup = eventLoopGroup
    }

    /// Delivers `message` (already formatted, CRLF line ends) from `sender` to `recipient`, within the
    /// client's timeout from connecting to the server's last reply.
    public func send(_ message: String, from sender: String, to recipient: String) async throws(MailError) {
        let limit = timeout
        do {
            try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask {
                    try await deliver(message, from: sender, to: recipient)
                    return true
                }
                group.addTask {
                    try await Task.sleep(for: .nanoseconds(limit.nanoseconds))
                    return false
                }
                defer { group.cancelAll() }
                if try await group.next() == false {
                    throw MailError.timedOut("\(server.displayLocation), \(limit.nanoseconds / 1_000_000_000) s")
                }
            }
        } catch let error as MailError {
            throw error
        } catch {
            throw .unreachable("\(server.displayLocation): \(error)")
        }
    }

    private func deliver(_ message: String, from sender: String, to recipient: String) async throws(MailError) {
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: eventLoopGroup)
                .connectTimeout(timeout)
                .connect(host: server.host, port: server.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if server.security == .implicitTLS {
                            try channel.pipeline.syncOperations.addHandler(try makeTLSHandler())
                        }
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineBasedFrameDecoder()))
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch let error as MailError {
            throw error
        } catch {
            throw .unreachable("\(server.displayLocation): \(error)")
        }
        do {
            try await channel.executeThenClose { inbound, outbound in
                var session = Session(lines: inbound.makeAsyncIterator(), outbound: outbound)
                try await converse(&session, channel: channel.channel, message: message, sender: sender, recipient: recipient)
            }
        } catch let error as MailError {
            throw error
        } catch {
            throw .unreachable("\(server.displayLocation): \(error)")
        }
    }

    private func converse(
        _ session: inout Session, channel: any Channel, message: String, sender: String, recipient: String
    ) async throws {
        try await session.expect("greeting", 220)
        var capabilities = try await session.command("EHLO \(Self.clientName)", expecting: 250).lines
        if server.security == .startTLS {
            guard capabilities.contains(where: { $0.uppercased().hasPrefix("STARTTLS") }) else {
                throw MailError.tls("\(server.displayLocation) does not offer STARTTLS (use smtp://…?starttls=off for a plain local relay)")
            }
            try await session.command("STARTTLS", expecting: 220)
            do {
                // The handler is made on the channel's event loop: it may not cross to another thread.
                try await channel.eventLoop.submit {
                    try channel.pipeline.syncOperations.addHandler(try makeTLSHandler(), position: .first)
                }.get()
            } catch let error as MailError {
                throw error
            } catch {
                throw MailError.tls("\(error)")
            }
            capabilities = try await session.command("EHLO \(Self.clientName)", expecting: 250).lines
        }
        if let username = server.username {
            guard capabilities.contains(where: { $0.uppercased().hasPrefix("AUTH") && $0.uppercased().contains("PLAIN") }) else {
                throw MailError.protocolViolation("the server does not offer AUTH PLAIN")
            }
            let credentials = Data("\u{0}\(username)\u{0}\(server.password?.value ?? "")".utf8).base64EncodedString()
            try await session.command("AUTH PLAIN \(credentials)", expecting: 235, shown: "AUTH PLAIN")
        }
        try await session.command("MAIL FROM:<\(sender)>", expecting: 250)
        try await session.command("RCPT TO:<\(recipient)>", expecting: 250, 251)
        try await session.command("DATA", expecting: 354)
        try await session.send(Self.dotStuffed(message) + "\r\n.\r\n")
        try await session.expect("message", 250)
        // The message is accepted; a failed goodbye changes nothing.
        _ = try? await session.command("QUIT", expecting: 221)
    }

    private func makeTLSHandler() throws -> NIOSSLClientHandler {
        do {
            let context = try NIOSSLContext(configuration: tls)
            // SNI takes host names only; for an IP address the certificate is checked against the address.
            let isAddress = (try? SocketAddress(ipAddress: server.host, port: 0)) != nil
            return try NIOSSLClientHandler(context: context, serverHostname: isAddress ? nil : server.host)
        } catch {
            throw MailError.tls("\(error)")
        }
    }

    static let clientName: String = {
        let name = ProcessInfo.processInfo.hostName
        return name.isEmpty || name.contains(where: { $0.isWhitespace }) ? "localhost" : name
    }()

    /// RFC 5321 §4.5.2: a line that starts with a dot gets another one.
    static func dotStuffed(_ message: String) -> String {
        let normalised = message.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\n", with: "\r\n")
        return normalised.split(separator: "\r\n", omittingEmptySubsequences: false)
            .map { $0.hasPrefix(".") ? "." + $0 : String($0) }
            .joined(separator: "\r\n")
    }

    /// The reply lines of one SMTP exchange.
    struct Reply {
        let code: Int
        let lines: [String]
    }

    struct Session {
        var lines: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
        let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>

        mutating func send(_ text: String) async throws {
            try await outbound.write(ByteBuffer(string: text))
        }

        @discardableResult
        mutating func command(_ line: String, expecting codes: Int..., shown: String? = nil) async throws -> Reply {
            try await send(line + "\r\n")
            return try await expect(shown ?? line, codes)
        }

        @discardableResult
        mutating func expect(_ step: String, _ codes: Int...) async throws -> Reply {
            try await expect(step, codes)
        }

        /// Reads one reply (`250-first`, `250-more`, `250 last`) and checks its code.
        mutating func expect(_ step: String, _ codes: [Int]) async throws -> Reply {
            var texts: [String] = []
            while true {
                guard let buffer = try await next(step) else {
                    throw MailError.protocolViolation("the connection closed during \(step)")
                }
                let line = String(buffer: buffer).trimmingCharacters(in: .newlines)
                guard line.count >= 3, let code = Int(line.prefix(3)) else {
                    throw MailError.protocolViolation("unexpected reply '\(line.prefix(80))' to \(step)")
                }
                texts.append(String(line.dropFirst(4)))
                if line.count == 3 || line[line.index(line.startIndex, offsetBy: 3)] == " " {
                    guard codes.contains(code) else {
                        throw MailError.rejected(command: step, code: code, text: texts.joined(separator: " "))
                    }
                    return Reply(code: code, lines: texts)
                }
            }
        }

        private mutating func next(_ step: String) async throws -> ByteBuffer? {
            try await lines.next()
        }
    }
}
