import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import StriveCore
import StriveDatabase
import StriveIdentity

/// The context of WebSocket upgrade requests (they are routed apart from the HTTP API).
public struct RealtimeRequestContext: RequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let webSocket: WebSocketHandlerReference<Self>

    public init(source: Source) {
        coreContext = .init(source: source)
        webSocket = .init()
    }
}

/// `GET /realtime/v1/websocket?apikey=…&vsn=1.0.0`: the Phoenix socket of Supabase Realtime.
public struct RealtimeRoutes: Sendable {
    let service: RealtimeService
    let tokens: TokenService
    let limits: RealtimeLimits

    public init(service: RealtimeService, tokens: TokenService, limits: RealtimeLimits = .init()) {
        self.service = service
        self.tokens = tokens
        self.limits = limits
    }

    public func webSocketRouter() -> Router<RealtimeRequestContext> {
        let router = Router(context: RealtimeRequestContext.self)
        router.ws("realtime/v1/websocket") { request, context in
            // Only the V1 JSON serializer is spoken; an absent vsn means 1.0.0 (supabase-js's default).
            if let version = QueryString(lenient: request.uri.query)["vsn"], !version.hasPrefix("1.") { return .dontUpgrade }
            return .upgrade([:])
        } onUpgrade: { inbound, outbound, context in
            let apikey = QueryString(lenient: context.request.uri.query)["apikey"]
            await serve(inbound: inbound, outbound: outbound, apikey: apikey, logger: context.logger)
        }
        return router
    }

    /// The socket's `apikey` must be the anon or service role key, checked as on every other surface.
    func resolveKey(_ apikey: String?) async throws(AuthError) -> Caller {
        guard let apikey, !apikey.isEmpty else { throw .noAPIKey }
        return try await Caller.resolve(headers: [HTTPField.Name("apikey")!: apikey], tokens: tokens)
    }

    func serve(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, apikey: String?, logger: Logger) async {
        let caller: Caller
        do {
            caller = try await resolveKey(apikey)
        } catch {
            try? await outbound.write(
                .text(
                    PhoenixMessage(
                        topic: "phoenix", event: "phx_reply", payload: ["status": "error", "response": ["reason": .string(error.message)]]
                    ).text))
            // Give the client a moment to read the reason before the close frame (it may close first).
            await withTaskGroup(of: Void.self) { group in
                group.addTask { _ = try? await inbound.messages(maxSize: 1 << 16).reduce(0) { count, _ in count + 1 } }
                group.addTask { try? await Task.sleep(for: .seconds(2)) }
                await group.next()
                group.cancelAll()
            }
            try? await outbound.close(.policyViolation, reason: error.code)
            return
        }
        let hub = service.hub
        let id = UUID()
        let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingOldest(limits.outboundQueue))
        await hub.connect(id: id, outbound: continuation, apikey: caller)
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await text in stream {
                    do { try await outbound.write(.text(text)) } catch { break }
                }
                // The queue ended: the client left, the server stops, or the client was too slow to keep up.
                if await hub.isSlow(id) {
                    try? await outbound.close(.policyViolation, reason: "slow consumer: too many undelivered messages")
                } else {
                    try? await outbound.close(.normalClosure, reason: nil)
                }
            }
            do {
                for try await message in inbound.messages(maxSize: limits.maxFrameBytes) {
                    switch message {
                    case .text(let text): await hub.receive(text, from: id)
                    case .binary: await hub.rejectBinary(from: id)
                    }
                }
            } catch {
                logger.debug("realtime socket ended", metadata: ["error": "\(error)"])
            }
            await hub.disconnect(id)
        }
    }
}
