import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTPTypes

/// Answers `Expect: 100-continue` with `100 Continue` as soon as the request head arrives. curl (and
/// other clients) send the header with bodies over 1 MiB and then wait for the interim answer before the
/// body; Hummingbird never sends one, so every large upload sat idle for curl's 1 s timeout (measured:
/// an 8 MiB upload took 1.03 s with the header, 0.02 s without). The request then goes on as usual; a
/// refusal (413, 401) still arrives as the final answer.
final class ExpectContinueHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundOut = HTTPResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data),
            head.headerFields[values: .expect].contains(where: { $0.lowercased() == "100-continue" })
        {
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
        }
        context.fireChannelRead(data)
    }
}
