import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import StriveCore
import StriveDatabase
import StriveIdentity

extension HTTPField.Name {
    static let tusResumable = HTTPField.Name("Tus-Resumable")!
    static let tusVersion = HTTPField.Name("Tus-Version")!
    static let tusExtension = HTTPField.Name("Tus-Extension")!
    static let tusMaxSize = HTTPField.Name("Tus-Max-Size")!
    static let uploadLength = HTTPField.Name("Upload-Length")!
    static let uploadOffset = HTTPField.Name("Upload-Offset")!
    static let uploadMetadata = HTTPField.Name("Upload-Metadata")!
    static let uploadExpires = HTTPField.Name("Upload-Expires")!
}

/// TUS 1.0.0 at `/storage/v1/upload/resumable` (core, creation, creation-with-upload, termination,
/// expiration), with Supabase's `Upload-Metadata` (`bucketName`, `objectName`, `contentType`,
/// `cacheControl`, `metadata`) and `x-upsert`, as storage-js's tus client sends them.
public struct ResumableUploadRoutes<Context: CallerRequestContext>: Sendable {
    let uploads: ResumableUploads

    public init(storage: StorageService) {
        uploads = ResumableUploads(storage: storage)
    }

    static var basePath: String { "storage/v1/upload/resumable" }
    static var version: String { "1.0.0" }
    static var offsetContentType: String { "application/offset+octet-stream" }

    public func register(on router: some RouterMethods<Context>) {
        // OPTIONS tells a client what this server speaks; TUS allows it without credentials.
        router.on(RouterPath(Self.basePath), method: .options) { _, _ in
            var response = Response(status: .noContent)
            response.headers[.tusResumable] = Self.version
            response.headers[.tusVersion] = Self.version
            response.headers[.tusExtension] = "creation,creation-with-upload,termination,expiration"
            return response
        }
        let callers = router.group(RouterPath(Self.basePath)).add(middleware: CallerScope<Context>())
        callers.post("") { request, context in try await Self.tus { try await create(request, context) } }
        callers.head(":upload") { request, context in try await Self.tus { try await offset(request, context) } }
        callers.patch(":upload") { request, context in try await Self.tus { try await append(request, context) } }
        callers.delete(":upload") { request, context in try await Self.tus { try await terminate(request, context) } }
    }

    /// Every successful TUS answer says which version it speaks.
    static func tus(_ body: () async throws -> Response) async throws -> Response {
        var response = try await body()
        response.headers[.tusResumable] = version
        return response
    }

    static func requireVersion(_ request: Request) throws(StorageError) {
        guard request.headers[.tusResumable] == version else {
            throw StorageError(.preconditionFailed, "InvalidRequest", "Tus-Resumable: \(version) is required")
        }
    }

    /// `Upload-Metadata`: comma-separated `key base64value` pairs (TUS creation).
    static func metadata(_ header: String?) throws(StorageError) -> [String: String] {
        var result: [String: String] = [:]
        for pair in (header ?? "").split(separator: ",") {
            let parts = pair.trimmingCharacters(in: .whitespaces).split(separator: " ", maxSplits: 1)
            guard let key = parts.first, !key.isEmpty else { continue }
            guard parts.count == 2 else {
                result[String(key)] = ""
                continue
            }
            guard let data = Data(base64Encoded: String(parts[1])), let value = String(data: data, encoding: .utf8) else {
                throw .invalidInput("Upload-Metadata \(key.prefix(40)) is not base64 of UTF-8 text")
            }
            result[String(key)] = value
        }
        return result
    }

    func create(_ request: Request, _ context: Context) async throws -> Response {
        try Self.requireVersion(request)
        let caller = try context.scopedCaller()
        guard let lengthText = request.headers[.uploadLength], let length = Int64(lengthText), length >= 0 else {
            throw StorageError.invalidInput("Upload-Length must be the upload's size in bytes (deferred lengths are not supported)")
        }
        let metadata = try Self.metadata(request.headers[.uploadMetadata])
        guard let bucket = metadata["bucketName"], !bucket.isEmpty else {
            throw StorageError.invalidInput("Upload-Metadata needs bucketName")
        }
        guard let name = metadata["objectName"] else { throw StorageError.invalidInput("Upload-Metadata needs objectName") }
        let key: ObjectKey
        do {
            key = try ObjectKey(name)
        } catch {
            throw StorageError.invalidKey(error)
        }
        var userMetadata: String?
        if let json = metadata["metadata"] { userMetadata = try ObjectRoutes<Context>.userMetadata(json: json) }
        let attributes = UploadAttributes(
            owner: caller.userID, mimeType: metadata["contentType"].flatMap { $0.isEmpty ? nil : $0 } ?? "application/octet-stream",
            cacheControl: ObjectRoutes<Context>.cacheControl(metadata["cacheControl"]) ?? "no-cache", userMetadata: userMetadata)
        let upsert = request.headers[.xUpsert]?.lowercased() == "true"
        let identity = caller.identity(method: "POST", path: request.uri.path)
        let (id, expires) = try await uploads.create(
            identity: identity, bucket: bucket, key: key, length: length, attributes: attributes, upsert: upsert)
        var response = Response(status: .created)
        response.headers[.location] = "/" + Self.basePath + "/" + id.uuidString.lowercased()
        response.headers[.uploadExpires] = Self.httpDate(expires)
        // creation-with-upload: the first bytes ride along.
        if request.headers[.contentType] == Self.offsetContentType, let upload = try await uploads.upload(id, for: identity) {
            let reached = try await appendAndMaybeFinish(upload, offset: 0, body: request.body)
            response.headers[.uploadOffset] = String(reached)
        } else if length == 0, let upload = try await uploads.upload(id, for: identity) {
            _ = try await uploads.finish(upload)
            response.headers[.uploadOffset] = "0"
        }
        context.logger.info("resumable upload created", metadata: ["bucket": "\(bucket)", "length": "\(length)"])
        return response
    }

    func found(_ request: Request, _ context: Context) async throws -> ResumableUpload {
        let caller = try context.scopedCaller()
        guard let text = context.parameters.get("upload"), let id = UUID(uuidString: text),
            let upload = try await uploads.upload(id, for: caller.identity(method: request.method.rawValue, path: request.uri.path))
        else { throw StorageError(.notFound, "not_found", "Upload not found") }
        guard !upload.expired else { throw StorageError(.gone, "Expired", "The upload expired; start a new one") }
        return upload
    }

    func offset(_ request: Request, _ context: Context) async throws -> Response {
        try Self.requireVersion(request)
        let upload = try await found(request, context)
        var response = Response(status: .ok)
        response.headers[.uploadOffset] = String(upload.offset)
        response.headers[.uploadLength] = String(upload.length)
        response.headers[.uploadExpires] = Self.httpDate(upload.expiresAt)
        response.headers[.cacheControl] = "no-store"
        return response
    }

    func append(_ request: Request, _ context: Context) async throws -> Response {
        try Self.requireVersion(request)
        guard request.headers[.contentType] == Self.offsetContentType else {
            throw StorageError(.unsupportedMediaType, "InvalidRequest", "PATCH needs Content-Type: \(Self.offsetContentType)")
        }
        guard let offsetText = request.headers[.uploadOffset], let offset = Int64(offsetText), offset >= 0 else {
            throw StorageError.invalidInput("Upload-Offset must be the number of bytes already received")
        }
        let upload = try await found(request, context)
        let reached = try await appendAndMaybeFinish(upload, offset: offset, body: request.body)
        var response = Response(status: .noContent)
        response.headers[.uploadOffset] = String(reached)
        response.headers[.uploadExpires] = Self.httpDate(upload.expiresAt)
        return response
    }

    /// Appends, and when the last byte is in, turns the parts into the object. A PATCH at the full length
    /// (an earlier completion that failed) tries the completion again.
    func appendAndMaybeFinish(_ upload: ResumableUpload, offset: Int64, body: RequestBody) async throws -> Int64 {
        switch try await uploads.append(upload, offset: offset, body: body) {
        case .conflict(let current):
            throw StorageError(.conflict, "InvalidOffset", "Upload-Offset \(offset) does not match the upload's offset \(current)")
        case .offset(let reached):
            if reached == upload.length { _ = try await uploads.finish(upload) }
            return reached
        }
    }

    func terminate(_ request: Request, _ context: Context) async throws -> Response {
        try Self.requireVersion(request)
        let upload = try await found(request, context)
        try await uploads.discard(upload.id)
        return Response(status: .noContent)
    }

    static func httpDate(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }
}
