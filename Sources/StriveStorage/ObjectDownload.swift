import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import StriveBlobs
import StriveMetrics

/// Serving an object's bytes: validators, conditional requests and one byte range, streamed in chunks.
struct ObjectDownload {
    let object: StoredObject
    let blobs: any BlobStore

    /// The range a `Range: bytes=…` header asks for within `size` bytes. nil: serve the whole object
    /// (no header, several ranges, or a unit we do not speak, as RFC 9110 allows); `.unsatisfiable`: 416.
    enum RangeRequest: Equatable {
        case whole
        case part(Range<Int64>)
        case unsatisfiable
    }

    static func range(_ header: String?, size: Int64) -> RangeRequest {
        guard let header, header.hasPrefix("bytes="), !header.contains(",") else { return .whole }
        let spec = header.dropFirst("bytes=".count).trimmingCharacters(in: .whitespaces)
        let bounds = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard bounds.count == 2 else { return .whole }
        let first = bounds[0].isEmpty ? nil : Int64(bounds[0])
        let last = bounds[1].isEmpty ? nil : Int64(bounds[1])
        switch (bounds[0].isEmpty, bounds[1].isEmpty) {
        case (true, true): return .whole
        case (true, false):
            // The last N bytes.
            guard let suffix = last else { return .whole }
            guard suffix > 0, size > 0 else { return .unsatisfiable }
            return .part(max(0, size - suffix)..<size)
        default:
            guard let start = first, start >= 0 else { return .whole }
            if !bounds[1].isEmpty && last == nil { return .whole }
            guard start < size else { return .unsatisfiable }
            if let end = last {
                guard end >= start else { return .whole }
                return .part(start..<min(end + 1, size))
            }
            return .part(start..<size)
        }
    }

    /// IMF-fixdate (RFC 9110 §5.6.7). A new formatter per use: DateFormatter is not Sendable.
    static func httpDateFormatter() -> DateFormatter {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter
    }

    static func httpDate(_ date: Date) -> String { httpDateFormatter().string(from: date) }

    static func parseHTTPDate(_ text: String) -> Date? { httpDateFormatter().date(from: text) }

    /// `If-None-Match` wins over `If-Modified-Since` (RFC 9110 §13.2.2).
    func notModified(_ headers: HTTPFields) -> Bool {
        if let match = headers[.ifNoneMatch] {
            let tags = match.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            return tags.contains("*") || tags.contains { $0 == object.eTag || $0 == "W/" + object.eTag }
        }
        if let since = headers[.ifModifiedSince].flatMap(Self.parseHTTPDate) {
            return object.lastModified.timeIntervalSince1970.rounded(.down) <= since.timeIntervalSince1970
        }
        return false
    }

    /// JavaScript's encodeURIComponent keeps these; Supabase Storage encodes the name with it.
    static let uriComponentCharacters = CharacterSet(
        charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()")

    /// Supabase Storage's header, byte for byte: the name percent-encoded as encodeURIComponent does, in both
    /// `filename` and `filename*` (an encoded name needs no quotes and carries no header syntax).
    static func contentDisposition(_ name: String) -> String {
        let encoded = name.addingPercentEncoding(withAllowedCharacters: uriComponentCharacters) ?? ""
        return "attachment; filename=\(encoded); filename*=UTF-8''\(encoded)"
    }

    func response(to request: Request, downloadName: String?) async throws -> Response {
        var headers: HTTPFields = [
            .eTag: object.eTag,
            .lastModified: Self.httpDate(object.lastModified),
            .cacheControl: object.cacheControl,
            .contentType: object.mimeType,
            .acceptRanges: "bytes",
        ]
        if let downloadName {
            headers[.contentDisposition] = Self.contentDisposition(downloadName)
        }
        if notModified(request.headers) {
            return Response(status: .notModified, headers: headers)
        }
        // The row said the bytes exist; a blob that vanished since (a concurrent replace) is a 404, not a cut
        // stream. (After the 304 answer, which needs no bytes: with S3 this is a request of its own.)
        let size = try await blobs.size(of: object.blob)
        var status = HTTPResponse.Status.ok
        var part: Range<Int64>?
        // If-Range: only honour the range when the client's copy is the current one.
        let rangeApplies = request.headers[.ifRange].map { $0 == object.eTag } ?? true
        switch rangeApplies ? Self.range(request.headers[.range], size: size) : .whole {
        case .whole: break
        case .part(let range):
            status = .partialContent
            part = range
            headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound - 1)/\(size)"
        case .unsatisfiable:
            headers[.contentRange] = "bytes */\(size)"
            throw StorageErrorWithHeaders(
                error: StorageError(.rangeNotSatisfiable, "InvalidRange", "the range is outside the object's \(size) bytes"),
                headers: headers)
        }
        let length = part.map { $0.upperBound - $0.lowerBound } ?? size
        headers[.contentLength] = String(length)
        let blobs = self.blobs
        let blob = object.blob
        let range = part
        return Response(
            status: status, headers: headers,
            body: ResponseBody(contentLength: Int(length)) { writer in
                try await blobs.read(blob, range: range) { chunk in
                    try await writer.write(chunk)
                    StriveMetrics.storageSent(bytes: chunk.readableBytes)
                }
                try await writer.finish(nil)
            })
    }
}

/// A storage error that carries response headers (416's `Content-Range`).
struct StorageErrorWithHeaders: Error, HTTPResponseError {
    let error: StorageError
    let headers: HTTPFields

    var status: HTTPResponse.Status { error.status }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = try error.response(from: request, context: context)
        for field in headers where response.headers[field.name] == nil { response.headers.append(field) }
        return response
    }
}
