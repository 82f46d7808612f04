import NIOCore
import NIOHTTP1

/// Bounds what a client may send before its request is answered. NIO's HTTP parser puts no limit on
/// header size, so without this a client could grow our buffers for as long as the request timeout.
/// Over the limit, the rest is dropped and a header overflow is reported, which is answered with 431.
final class RequestSizeLimiter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let limit: Int
    private var received = 0
    private var exceeded = false

    init(limit: Int) {
        self.limit = limit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.exceeded else { return }
        self.received += self.unwrapInboundIn(data).readableBytes
        if self.received > self.limit {
            self.exceeded = true
            context.fireErrorCaught(HTTPParserError.headerOverflow)
        } else {
            context.fireChannelRead(data)
        }
    }
}
