import Hummingbird

/// How one surface (auth, data API, storage) answers what its handlers throw. Handlers throw domain and
/// database errors as they are; the server's error middleware asks the translator of the request's
/// surface once, at the edge, so no handler renders an error itself.
public protocol ErrorTranslator: Sendable {
    /// `error` as this surface answers it, or nil when the surface does not know it: a bug, or the database
    /// out of reach, which the middleware answers alike for every surface.
    func translate(_ error: any Error, caller: Caller?) -> (any HTTPResponseError)?
}
