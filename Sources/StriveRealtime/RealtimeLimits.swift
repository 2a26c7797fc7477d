/// Bounds on what one socket may ask of the server.
public struct RealtimeLimits: Sendable {
    /// Channels one socket may have joined at once.
    public var channelsPerSocket = 100
    /// `phx_join`s one socket may send per second.
    public var joinsPerSecond = 20
    /// Largest text frame accepted (larger ones close the socket, code 1009).
    public var maxFrameBytes = 1 << 20
    /// Largest message handled; larger ones get an error reply.
    public var maxMessageBytes = 256 * 1024
    /// Messages queued for one socket before it counts as a slow consumer and is disconnected.
    public var outboundQueue = 2048

    public init() {}
}
