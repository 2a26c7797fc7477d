internal import AsyncHTTPClient
internal import Crypto
import Foundation
import NIOCore
import NIOFoundationCompat
internal import NIOHTTP1
import NIOPosix

/// Where a bucket is and how to sign for it.
public struct S3Configuration: Sendable, Equatable {
    /// `scheme://host[:port]` of the S3 API.
    public var endpoint: URL
    public var region: String
    public var bucket: String
    public var accessKeyID: String
    public var secretAccessKey: String
    /// Address the bucket as `endpoint/bucket/key` (MinIO, moto, most self-hosted stores) rather than
    /// `bucket.endpoint/key` (AWS's default).
    public var forcePathStyle: Bool

    public init(endpoint: URL, region: String, bucket: String, accessKeyID: String, secretAccessKey: String, forcePathStyle: Bool) {
        self.endpoint = endpoint
        self.region = region
        self.bucket = bucket
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.forcePathStyle = forcePathStyle
    }
}

/// What went wrong talking to S3.
public enum S3Error: Error, Sendable, CustomStringConvertible {
    /// No answer: the endpoint refused, timed out or the connection broke.
    case unreachable(String)
    /// S3 answered with an error status.
    case service(status: Int, code: String, message: String)
    /// S3 answered something this client cannot read.
    case malformedResponse(String)

    public var isNotFound: Bool {
        if case .service(let status, let code, _) = self { return status == 404 && code != "NoSuchBucket" && code != "NoSuchUpload" }
        return false
    }

    public var description: String {
        switch self {
        case .unreachable(let reason): "S3 is unreachable: \(reason)"
        case .service(let status, let code, let message): "S3 answered \(status) \(code): \(message)"
        case .malformedResponse(let reason): "S3 answered something unreadable: \(reason)"
        }
    }
}

/// The S3 operations a blob store needs, signed with SigV4 and sent with AsyncHTTPClient. Bodies go out
/// as given and come back as streams: nothing here holds a whole object.
public final class S3Client: Sendable {
    public let configuration: S3Configuration
    let signer: SigV4Signer
    let http: HTTPClient
    /// Non-streaming calls must finish within this; streamed bodies are bounded by the read timeout instead.
    static let callTimeout: TimeAmount = .seconds(60)

    public init(configuration: S3Configuration, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.configuration = configuration
        self.signer = SigV4Signer(
            credentials: .init(accessKeyID: configuration.accessKeyID, secretAccessKey: configuration.secretAccessKey),
            region: configuration.region)
        var http = HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5), read: .seconds(30)),
            connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 64))
        http.decompression = .disabled
        self.http = HTTPClient(eventLoopGroupProvider: .shared(eventLoopGroup), configuration: http)
    }

    /// Closes the pooled connections; call once, when nothing uses the client any more.
    public func shutdown() async throws {
        try await http.shutdown()
    }

    // MARK: Objects

    @discardableResult
    public func putObject(_ key: String, body: ByteBuffer, contentType: String = "application/octet-stream") async throws(S3Error) -> String
    {
        let response = try await send("PUT", key: key, headers: [("content-type", contentType)], body: body)
        return response.headers.first(name: "etag") ?? ""
    }

    /// The object's bytes in `range` (all of them when nil), handed to `consume` as they arrive.
    public func getObject(_ key: String, range: Range<Int64>?, _ consume: (ByteBuffer) async throws -> Void) async throws {
        var headers: [(String, String)] = []
        if let range {
            guard !range.isEmpty else { return }
            headers.append(("range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)"))
        }
        let response = try await execute("GET", key: key, headers: headers, deadline: .now() + .hours(24))
        try await Self.check(response)
        // Errors of the stream are S3's; errors of `consume` (the client went away) stay the caller's.
        var chunks = response.body.makeAsyncIterator()
        while true {
            let chunk: ByteBuffer?
            do {
                chunk = try await chunks.next()
            } catch {
                throw S3Error.unreachable(Self.reason(error))
            }
            guard let chunk else { return }
            try await consume(chunk)
        }
    }

    public struct ObjectHead: Sendable {
        public let size: Int64
        public let eTag: String
    }

    /// The object's size and entity tag; nil when there is no such object.
    public func headObject(_ key: String) async throws(S3Error) -> ObjectHead? {
        do {
            let response = try await send("HEAD", key: key)
            let size = response.headers.first(name: "content-length").flatMap { Int64($0) } ?? 0
            return ObjectHead(size: size, eTag: response.headers.first(name: "etag") ?? "")
        } catch  where error.isNotFound {
            return nil
        }
    }

    /// Deletes the object; deleting one that does not exist is not an error (S3 answers 204 either way).
    public func deleteObject(_ key: String) async throws(S3Error) {
        do {
            try await send("DELETE", key: key)
        } catch  where error.isNotFound {
        }
    }

    /// A server-side copy of an object of at most 5 GiB (S3's limit for one copy).
    public func copyObject(from source: String, to key: String) async throws(S3Error) {
        let response = try await send("PUT", key: key, headers: [("x-amz-copy-source", copySource(source))])
        // A copy can fail after S3 answered 200: the error is then in the body.
        if let document = S3XML.parse(Data(buffer: response.body)), document.name == "Error" {
            throw .service(status: 500, code: document.text("Code") ?? "InternalError", message: document.text("Message") ?? "")
        }
    }

    // MARK: Files

    /// Uploads the file at `path` as `key`: one PUT up to `partSize`, a multipart upload above it, one part
    /// in memory at a time.
    public func upload(fileAt path: String, to key: String, partSize: Int = 8 << 20) async throws {
        guard let file = FileHandle(forReadingAtPath: path) else {
            throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path])
        }
        defer { try? file.close() }
        let first = try file.read(upToCount: partSize) ?? Data()
        guard first.count == partSize else {
            try await putObject(key, body: ByteBuffer(bytes: first))
            return
        }
        let upload = try await createMultipartUpload(key)
        do {
            var eTags = [try await uploadPart(key, uploadID: upload, number: 1, body: ByteBuffer(bytes: first))]
            while let part = try file.read(upToCount: partSize), !part.isEmpty {
                eTags.append(try await uploadPart(key, uploadID: upload, number: eTags.count + 1, body: ByteBuffer(bytes: part)))
            }
            try await completeMultipartUpload(key, uploadID: upload, parts: eTags)
        } catch {
            try? await abortMultipartUpload(key, uploadID: upload)
            throw error
        }
    }

    // MARK: Multipart uploads

    public func createMultipartUpload(_ key: String, contentType: String = "application/octet-stream") async throws(S3Error) -> String {
        let response = try await send("POST", key: key, query: [("uploads", "")], headers: [("content-type", contentType)])
        guard let id = S3XML.parse(Data(buffer: response.body))?.text("UploadId"), !id.isEmpty else {
            throw .malformedResponse("CreateMultipartUpload without an UploadId")
        }
        return id
    }

    /// Uploads part `number` (1-based) and returns its entity tag.
    public func uploadPart(_ key: String, uploadID: String, number: Int, body: ByteBuffer) async throws(S3Error) -> String {
        let response = try await send("PUT", key: key, query: [("partNumber", String(number)), ("uploadId", uploadID)], body: body)
        guard let eTag = response.headers.first(name: "etag") else { throw .malformedResponse("UploadPart without an ETag") }
        return eTag
    }

    /// Copies `range` of `source` as part `number` of an upload; returns the part's entity tag.
    public func uploadPartCopy(_ key: String, uploadID: String, number: Int, source: String, range: Range<Int64>) async throws(S3Error)
        -> String
    {
        let response = try await send(
            "PUT", key: key, query: [("partNumber", String(number)), ("uploadId", uploadID)],
            headers: [
                ("x-amz-copy-source", copySource(source)), ("x-amz-copy-source-range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)"),
            ])
        guard let eTag = S3XML.parse(Data(buffer: response.body))?.text("ETag") else {
            throw .malformedResponse("UploadPartCopy without an ETag")
        }
        return eTag
    }

    public func completeMultipartUpload(_ key: String, uploadID: String, parts: [String]) async throws(S3Error) {
        var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for (index, eTag) in parts.enumerated() {
            xml += "<Part><PartNumber>\(index + 1)</PartNumber><ETag>\(S3XML.escape(eTag))</ETag></Part>"
        }
        xml += "</CompleteMultipartUpload>"
        let response = try await send(
            "POST", key: key, query: [("uploadId", uploadID)], headers: [("content-type", "application/xml")],
            body: ByteBuffer(string: xml))
        if let document = S3XML.parse(Data(buffer: response.body)), document.name == "Error" {
            throw .service(status: 500, code: document.text("Code") ?? "InternalError", message: document.text("Message") ?? "")
        }
    }

    public func abortMultipartUpload(_ key: String, uploadID: String) async throws(S3Error) {
        do {
            try await send("DELETE", key: key, query: [("uploadId", uploadID)])
        } catch  where error.isNotFound || error.code == "NoSuchUpload" {
        }
    }

    // MARK: Listing

    public struct ListedObject: Sendable {
        public let key: String
        public let size: Int64
        public let lastModified: Date
    }

    /// One page (up to 1000) of the objects under `prefix`, and the token of the next page.
    public func listObjects(prefix: String, continuationToken: String? = nil) async throws(S3Error) -> (
        objects: [ListedObject], next: String?
    ) {
        var query = [("list-type", "2"), ("prefix", prefix)]
        if let continuationToken { query.append(("continuation-token", continuationToken)) }
        let response = try await send("GET", key: nil, query: query)
        guard let document = S3XML.parse(Data(buffer: response.body)) else { throw .malformedResponse("ListObjectsV2 is not XML") }
        let objects = document.all("Contents").compactMap { entry -> ListedObject? in
            guard let key = entry.text("Key"), let modified = S3XML.date(entry.text("LastModified")) else { return nil }
            return ListedObject(key: key, size: Int64(entry.text("Size") ?? "") ?? 0, lastModified: modified)
        }
        let truncated = document.text("IsTruncated") == "true"
        return (objects, truncated ? document.text("NextContinuationToken") : nil)
    }

    public struct PendingUpload: Sendable {
        public let key: String
        public let uploadID: String
        public let initiated: Date
    }

    /// Multipart uploads under `prefix` that were started and neither completed nor aborted (one page).
    public func listMultipartUploads(prefix: String) async throws(S3Error) -> [PendingUpload] {
        let response = try await send("GET", key: nil, query: [("uploads", ""), ("prefix", prefix)])
        guard let document = S3XML.parse(Data(buffer: response.body)) else { throw .malformedResponse("ListMultipartUploads is not XML") }
        return document.all("Upload").compactMap { upload in
            guard let key = upload.text("Key"), let id = upload.text("UploadId"), let initiated = S3XML.date(upload.text("Initiated"))
            else { return nil }
            return PendingUpload(key: key, uploadID: id, initiated: initiated)
        }
    }

    // MARK: Buckets

    /// Succeeds when the bucket exists and these credentials may use it.
    public func headBucket() async throws(S3Error) {
        try await send("HEAD", key: nil)
    }

    public func createBucket() async throws(S3Error) {
        var body: ByteBuffer?
        if configuration.region != "us-east-1" {
            body = ByteBuffer(
                string: "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>"
                    + S3XML.escape(configuration.region) + "</LocationConstraint></CreateBucketConfiguration>")
        }
        try await send("PUT", key: nil, body: body)
    }

    // MARK: Requests

    struct Answer {
        let headers: HTTPHeaders
        let body: ByteBuffer
    }

    /// A signed request whose answer is read whole (answers to these calls are small).
    @discardableResult
    func send(
        _ method: String, key: String?, query: [(String, String)] = [], headers: [(String, String)] = [], body: ByteBuffer? = nil
    ) async throws(S3Error) -> Answer {
        do {
            let response = try await execute(
                method, key: key, query: query, headers: headers, body: body, deadline: .now() + Self.callTimeout)
            try await Self.check(response)
            let answer = try await response.body.collect(upTo: 16 << 20)
            return Answer(headers: response.headers, body: answer)
        } catch let error as S3Error {
            throw error
        } catch {
            throw .unreachable(Self.reason(error))
        }
    }

    /// Signs and sends; the caller reads (or streams) the body.
    func execute(
        _ method: String, key: String?, query: [(String, String)] = [], headers: [(String, String)] = [], body: ByteBuffer? = nil,
        deadline: NIODeadline
    ) async throws(S3Error) -> HTTPClientResponse {
        let (url, path, host) = address(of: key)
        let date = Date()
        let payloadHash = body.map(Self.hexSHA256) ?? SigV4Signer.emptyPayloadHash
        var signed = headers
        signed.append(("host", host))
        signed.append(("x-amz-date", SigV4Signer.timestamp(date)))
        signed.append(("x-amz-content-sha256", payloadHash))
        let authorization = signer.authorization(
            method: method, path: path, query: query, headers: signed, payloadHash: payloadHash, date: date)
        let canonicalQuery = SigV4Signer.canonicalQuery(query)
        var request = HTTPClientRequest(url: url + (canonicalQuery.isEmpty ? "" : "?" + canonicalQuery))
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in signed { request.headers.add(name: name, value: value) }
        request.headers.add(name: "authorization", value: authorization)
        if let body {
            request.body = .bytes(body)
        } else if method == "PUT" || method == "POST" {
            request.headers.add(name: "content-length", value: "0")
        }
        do {
            return try await http.execute(request, deadline: deadline)
        } catch {
            throw .unreachable(Self.reason(error))
        }
    }

    /// The URL (path already encoded), the unencoded path that is signed, and the Host header.
    func address(of key: String?) -> (url: String, path: String, host: String) {
        let endpoint = configuration.endpoint
        let scheme = endpoint.scheme ?? "https"
        var host = endpoint.host ?? ""
        if let port = endpoint.port, !(scheme == "http" && port == 80) && !(scheme == "https" && port == 443) {
            host += ":\(port)"
        }
        var path: String
        if configuration.forcePathStyle {
            path = "/" + configuration.bucket + (key.map { "/" + $0 } ?? "")
        } else {
            host = configuration.bucket + "." + host
            path = "/" + (key ?? "")
        }
        return ("\(scheme)://\(host)\(SigV4Signer.encode(path, keepingSlashes: true))", path, host)
    }

    private func copySource(_ key: String) -> String {
        SigV4Signer.encode("/" + configuration.bucket + "/" + key, keepingSlashes: true)
    }

    static func check(_ response: HTTPClientResponse) async throws(S3Error) {
        guard !(200..<300).contains(response.status.code) else { return }
        let body = (try? await response.body.collect(upTo: 1 << 20)).map { Data(buffer: $0) } ?? Data()
        let document = S3XML.parse(body)
        throw .service(
            status: Int(response.status.code), code: document?.text("Code") ?? Self.code(for: response.status),
            message: document?.text("Message") ?? response.status.reasonPhrase)
    }

    /// HEAD answers have no body: name the error by its status.
    static func code(for status: HTTPResponseStatus) -> String {
        switch status.code {
        case 404: "NotFound"
        case 403: "AccessDenied"
        case 503: "SlowDown"
        default: "HTTP\(status.code)"
        }
    }

    static func hexSHA256(_ buffer: ByteBuffer) -> String {
        var hasher = SHA256()
        buffer.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
        return SigV4Signer.hex(hasher.finalize())
    }

    static func reason(_ error: any Error) -> String {
        if let client = error as? HTTPClientError {
            if client == .connectTimeout || client == .deadlineExceeded || client == .readTimeout { return "timed out" }
            if client == .remoteConnectionClosed { return "the connection closed" }
        }
        return String(describing: error)
    }
}

extension S3Error {
    /// S3's error code, when S3 answered with one.
    public var code: String? {
        if case .service(_, let code, _) = self { return code }
        return nil
    }
}
