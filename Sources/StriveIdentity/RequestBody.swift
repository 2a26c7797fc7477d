import Foundation
import Hummingbird
import NIOCore
import NIOFoundationCompat
import StriveCore

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

extension Request {
    /// The query string decoded as forms and the Supabase clients encode it (`+` is a space), or the
    /// surface's own `malformed` error naming the part at fault.
    public func queryString(malformed: (QueryString.MalformedError) -> some Error) throws -> QueryString {
        do {
            return try QueryString(uri.query ?? "")
        } catch {
            throw malformed(error)
        }
    }
}
