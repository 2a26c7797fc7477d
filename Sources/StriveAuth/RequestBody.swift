import Foundation
import Hummingbird
import NIOCore
import NIOFoundationCompat

extension Request {
    /// The whole body as `Data`, refusing one longer than `limit` bytes with the surface's own
    /// `tooLarge` error before it is read whole.
    public func bodyData(upTo limit: Int, tooLarge: @autoclosure () -> some Error) async throws -> Data {
        do {
            return Data(buffer: try await body.collect(upTo: limit))
        } catch is NIOTooManyBytesError {
            throw tooLarge()
        }
    }
}
