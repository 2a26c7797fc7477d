import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOFoundationCompat
import PostgresNIO
import StriveBlobs
import StriveCore
import StriveDatabase
import StriveIdentity
import StriveMetrics

extension HTTPField.Name {
    static let xUpsert = HTTPField.Name("x-upsert")!
    static let xMetadata = HTTPField.Name("x-metadata")!
}

/// Supabase Storage's object endpoints under `/storage/v1/object`, in the request shapes storage-js sends.
/// Authenticated endpoints run their metadata work as the caller, so the policies on `storage.objects`
/// decide; the public and signed endpoints are the named service paths, after checking the bucket is
/// public or the token signs exactly this object.
public struct ObjectRoutes<Context: CallerRequestContext>: Sendable {
    let service: StorageService

    public init(service: StorageService) {
        self.service = service
    }

    /// JSON request bodies (list, move, sign…) are small.
    static var maxJSONBytes: Int { 1 << 20 }
    /// Bytes a multipart body may carry beyond its file (boundaries, part headers, fields).
    static var multipartOverhead: Int64 { Int64(MultipartFileStream.maximumOverhead) }

    static var basePath: String { "storage/v1/object" }

    public func register(on router: some RouterMethods<Context>) {
        // Who a route acts as is its scope's decision: the caller (policies on `storage.objects` decide), or a
        // grant — a signed URL's token or a public bucket — on a named service path for exactly one object.
        let callers = router.group(RouterPath(Self.basePath)).add(middleware: CallerScope<Context>())
        let signedDownloads = router.group(RouterPath(Self.basePath)).add(
            middleware: GrantScope<Context> { request, context in
                let (bucket, key) = try target(request, context, after: "sign")
                try await service.signer.verifyDownload(try token(request), bucket: bucket, key: key)
                return Grant(identity: .serviceRole(method: "GET", path: "signed-object"))
            })
        let signedUploads = router.group(RouterPath(Self.basePath)).add(
            middleware: GrantScope<Context> { request, context in
                let (bucket, key) = try target(request, context, after: "upload/sign")
                let grant = try await service.signer.verifyUpload(try token(request), bucket: bucket, key: key)
                // The token stands for the caller who asked for it.
                return Grant(identity: .serviceRole(method: "PUT", path: "signed-upload"), owner: grant.owner, upsert: grant.upsert)
            })
        let publicObjects = router.group(RouterPath(Self.basePath)).add(
            middleware: GrantScope<Context> { _, context in
                // Private buckets answer as if the object did not exist: a public URL reveals nothing.
                guard try await service.rules(of: try bucketParameter(context)).isPublic else { throw StorageError.objectNotFound }
                return Grant(identity: .serviceRole(method: "GET", path: "public-object"))
            })
        // Image transformations: the same scopes as downloads, so the same policies and grants decide.
        let renderBase = RouterPath("storage/v1/render/image")
        router.group(renderBase).add(middleware: CallerScope<Context>()).get("authenticated/:bucket/**") { request, context in
            try await render(request, context, after: "image/authenticated")
        }
        router.group(renderBase).add(
            middleware: GrantScope<Context> { _, context in
                guard try await service.rules(of: try bucketParameter(context)).isPublic else { throw StorageError.objectNotFound }
                return Grant(identity: .serviceRole(method: "GET", path: "public-render"))
            }
        ).get("public/:bucket/**") { request, context in try await render(request, context, after: "image/public") }
        router.group(renderBase).add(
            middleware: GrantScope<Context> { request, context in
                let (bucket, key) = try target(request, context, after: "image/sign")
                // A token signed with a transformation renders exactly that one.
                let transformations = try await service.signer.verifyDownload(try token(request), bucket: bucket, key: key)
                return Grant(identity: .serviceRole(method: "GET", path: "signed-render"), fixedParameters: transformations)
            }
        ).get("sign/:bucket/**") { request, context in try await render(request, context, after: "image/sign") }
        // Constant segments win over parameters in the router, so these precede `:bucket/**` by matching.
        callers.post("list/:bucket") { request, context in try await list(request, context) }
        callers.post("list-v2/:bucket") { request, context in try await listV2(request, context) }
        callers.post("move") { request, context in try await move(request, context) }
        callers.post("copy") { request, context in try await copy(request, context) }
        callers.post("sign/:bucket") { request, context in try await signMany(request, context) }
        callers.post("sign/:bucket/**") { request, context in try await sign(request, context) }
        signedDownloads.get("sign/:bucket/**") { request, context in try await downloadGranted(request, context, after: "sign") }
        callers.post("upload/sign/:bucket/**") { request, context in try await signUpload(request, context) }
        signedUploads.put("upload/sign/:bucket/**") { request, context in try await uploadSigned(request, context) }
        publicObjects.get("public/:bucket/**") { request, context in try await downloadGranted(request, context, after: "public") }
        callers.get("authenticated/:bucket/**") { request, context in try await download(request, context, after: "authenticated") }
        publicObjects.get("info/public/:bucket/**") { request, context in try await info(request, context, after: "info/public") }
        callers.get("info/authenticated/:bucket/**") { request, context in try await info(request, context, after: "info/authenticated") }
        callers.get("info/:bucket/**") { request, context in try await info(request, context, after: "info") }
        callers.post(":bucket/**") { request, context in try await upload(request, context, forceUpsert: false) }
        callers.put(":bucket/**") { request, context in try await upload(request, context, forceUpsert: true) }
        callers.get(":bucket/**") { request, context in try await download(request, context, after: "") }
        callers.delete(":bucket/**") { request, context in try await removeOne(request, context) }
        // HEAD answers as GET would, without the bytes (storage-js's `exists()`).
        signedDownloads.head("sign/:bucket/**") { request, context in
            try await downloadGranted(request, context, after: "sign").createHeadResponse()
        }
        publicObjects.head("public/:bucket/**") { request, context in
            try await downloadGranted(request, context, after: "public").createHeadResponse()
        }
        callers.head("authenticated/:bucket/**") { request, context in
            try await download(request, context, after: "authenticated").createHeadResponse()
        }
        callers.head(":bucket/**") { request, context in try await download(request, context, after: "").createHeadResponse() }
        callers.delete(":bucket") { request, context in try await remove(request, context) }
    }

    // MARK: Uploads

    func upload(_ request: Request, _ context: Context, forceUpsert: Bool) async throws -> Response {
        let caller = try context.scopedCaller()
        let (bucket, key) = try target(request, context, after: "")
        let upsert = forceUpsert || request.headers[.xUpsert]?.lowercased() == "true"
        return try await store(
            request, context, bucket: bucket, key: key,
            identity: caller.identity(method: request.method.rawValue, path: request.uri.path),
            owner: caller.userID, upsert: upsert, authorize: true)
    }

    func uploadSigned(_ request: Request, _ context: Context) async throws -> Response {
        let grant = try context.scopedGrant()
        let (bucket, key) = try target(request, context, after: "upload/sign")
        return try await store(
            request, context, bucket: bucket, key: key, identity: grant.identity, owner: grant.owner, upsert: grant.upsert,
            authorize: false)
    }

    /// Checks the bucket's limits and the policies, streams the body to a staged blob, then writes the row
    /// and publishes the bytes in one transaction.
    private func store(
        _ request: Request, _ context: Context, bucket: String, key: ObjectKey, identity: RequestIdentity, owner: UUID?, upsert: Bool,
        authorize: Bool
    ) async throws -> Response {
        let rules = try await service.rules(of: bucket)
        let contentType = request.headers[.contentType] ?? "application/octet-stream"
        let declaredLength = request.headers[.contentLength].flatMap(Int64.init)
        let boundary = MultipartFileStream.boundary(of: contentType)
        if let declaredLength {
            try rules.check(size: boundary == nil ? declaredLength : max(0, declaredLength - Self.multipartOverhead))
        }
        var attributes = UploadAttributes(
            owner: owner, mimeType: contentType,
            cacheControl: Self.cacheControl(request.headers[.cacheControl]) ?? "no-cache",
            userMetadata: try Self.userMetadata(header: request.headers[.xMetadata]))
        if boundary == nil { try rules.check(mimeType: contentType) }
        if authorize {
            try await service.authorizeUpload(identity, bucket: bucket, key: key, attributes: attributes, upsert: upsert)
        }
        let staged: StagedBlob
        if let boundary {
            let stream = MultipartFileStream(body: request.body, boundary: boundary) { type in try rules.check(mimeType: type) }
            staged = try await service.blobs.stage(stream, limit: rules.sizeLimit)
            let fields = stream.collectedFields
            attributes.mimeType = fields.fileContentType ?? attributes.mimeType
            if let cache = fields.cacheControl { attributes.cacheControl = Self.cacheControl(cache) ?? attributes.cacheControl }
            if let metadata = fields.metadata {
                do {
                    attributes.userMetadata = try Self.userMetadata(json: metadata)
                } catch {
                    await service.blobs.discard(staged)
                    throw error
                }
            }
        } else {
            staged = try await service.blobs.stage(request.body, limit: rules.sizeLimit)
        }
        let id = try await service.commitUpload(identity, bucket: bucket, key: key, staged: staged, attributes: attributes, upsert: upsert)
        context.logger.info("stored object", metadata: ["bucket": "\(bucket)", "bytes": "\(staged.size)"])
        return try Response.storageJSON(["Id": id.uuidString.lowercased(), "Key": bucket + "/" + key.value])
    }

    /// storage-js sends `cacheControl: "3600"` in forms and `cache-control: max-age=3600` as a header.
    static func cacheControl(_ value: String?) -> String? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        return value.allSatisfy(\.isNumber) ? "max-age=\(value)" : value
    }

    /// `x-metadata`: base64 of a JSON object (storage-js), validated before anything is stored.
    static func userMetadata(header: String?) throws(StorageError) -> String? {
        guard let header else { return nil }
        guard let data = Data(base64Encoded: header) else { throw .invalidInput("x-metadata must be base64-encoded JSON") }
        return try userMetadata(json: String(decoding: data, as: UTF8.self))
    }

    static func userMetadata(json: String) throws(StorageError) -> String? {
        guard let value = JSONValue(jsonText: json), value.objectValue != nil else {
            throw .invalidInput("metadata must be a JSON object")
        }
        return value.jsonText
    }

    func signUpload(_ request: Request, _ context: Context) async throws -> Response {
        let caller = try context.scopedCaller()
        let (bucket, key) = try target(request, context, after: "upload/sign")
        let upsert = request.headers[.xUpsert]?.lowercased() == "true"
        _ = try await service.rules(of: bucket)
        // Whoever signs must be allowed to write the object now.
        try await service.authorizeUpload(
            caller.identity(method: request.method.rawValue, path: request.uri.path), bucket: bucket, key: key,
            attributes: UploadAttributes(owner: caller.userID, mimeType: "application/octet-stream", cacheControl: "no-cache"),
            upsert: upsert)
        let token = try await service.signer.signUpload(bucket: bucket, key: key, owner: caller.userID, upsert: upsert)
        return try Response.storageJSON([
            "url": "/object/upload/sign/\(bucket)/\(Self.encodePath(key.value))?token=\(token)", "token": token,
        ])
    }

    // MARK: Downloads

    func download(_ request: Request, _ context: Context, after prefix: String) async throws -> Response {
        let caller = try context.scopedCaller()
        let (bucket, key) = try target(request, context, after: prefix)
        let identity = caller.identity(method: request.method.rawValue, path: request.uri.path)
        guard let object = try await service.object(identity, bucket: bucket, key: key) else {
            _ = try await service.rules(of: bucket)
            throw StorageError.objectNotFound
        }
        return try await serve(object, request, key: key)
    }

    /// A download a signed URL or a public bucket opened (`GrantScope`).
    func downloadGranted(_ request: Request, _ context: Context, after prefix: String) async throws -> Response {
        let grant = try context.scopedGrant()
        let (bucket, key) = try target(request, context, after: prefix)
        guard let object = try await service.object(grant.identity, bucket: bucket, key: key) else { throw StorageError.objectNotFound }
        return try await serve(object, request, key: key)
    }

    private func serve(_ object: StoredObject, _ request: Request, key: ObjectKey) async throws -> Response {
        // `?download` names the file after the key; `?download=name` chooses the name.
        let download = try query(request)["download"].map { $0.isEmpty ? String(key.value.split(separator: "/").last ?? "") : $0 }
        return try await ObjectDownload(object: object, blobs: service.blobs).response(to: request, downloadName: download)
    }

    /// `/render/image/{public,authenticated,sign}/bucket/key?width&height&resize&quality&format&download`:
    /// the object as its readers may see it, transformed. `after` counts the route's segments as `target`
    /// does for `/object/...` ("image/<kind>": `render/image` is one segment longer than `object`).
    func render(_ request: Request, _ context: Context, after prefix: String) async throws -> Response {
        let (bucket, key) = try target(request, context, after: prefix)
        let identity = try actingIdentity(request, context)
        let parameters = try query(request)
        let limits = service.imageSettings
        let options: ImageTransformation
        if case .grant(let grant) = context.scopedIdentity, !grant.fixedParameters.isEmpty {
            options = try ImageTransformation(query: grant.fixedParameters, limits: limits)
        } else {
            options = try ImageTransformation(query: parameters, limits: limits)
        }
        if let reason = ImageTransformer.unavailableReason { throw StorageError(.notImplemented, "FeatureNotEnabled", reason) }
        guard let object = try await service.object(identity, bucket: bucket, key: key) else { throw StorageError.objectNotFound }
        guard object.size <= Int64(limits.sourceBytes) else {
            throw StorageError(
                .contentTooLarge, "ImageTooLarge",
                "The original is \(object.size) bytes; transformations read at most \(limits.sourceBytes)")
        }
        // A variant is named by the object's version (a replaced object never matches), the options and what
        // the client accepts (which decides the format).
        let accept = request.headers[.accept] ?? ""
        let accepts = (accept.contains("image/avif") ? "a" : "") + (accept.contains("image/webp") ? "w" : "")
        let variantName = "\(options.signature)-\(accepts)"
        let eTag = "\"\(object.blob)-\(variantName)\""
        var headers: HTTPFields = [.eTag: eTag, .cacheControl: object.cacheControl, .vary: "Accept"]
        if let download = parameters["download"] {
            headers[.contentDisposition] = ObjectDownload.contentDisposition(
                download.isEmpty ? String(key.value.split(separator: "/").last ?? "") : download)
        }
        if request.headers[.ifNoneMatch].map({ $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.contains(eTag) })
            == true
        {
            return Response(status: .notModified, headers: headers)
        }
        let variants = ImageVariants(storage: service)
        if let kept = await variants.cached(version: object.blob, options: variantName) {
            StriveMetrics.imageVariant(cached: true)
            headers[.contentType] = kept.contentType
            headers[.contentLength] = String(kept.bytes.readableBytes)
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: kept.bytes))
        }
        var source: [UInt8] = []
        source.reserveCapacity(Int(object.size))
        try await service.blobs.read(object.blob, range: nil) { buffer in source.append(contentsOf: buffer.readableBytesView) }
        let output = try await ImageTransformer.transform(source, options, accept: accept, limits: limits)
        StriveMetrics.imageVariant(cached: false)
        StriveMetrics.imageTransformed(bytes: output.bytes.readableBytes)
        headers[.contentType] = output.contentType
        headers[.contentLength] = String(output.bytes.readableBytes)
        let version = object.blob
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody(contentLength: output.bytes.readableBytes) { writer in
                try await writer.write(output.bytes)
                try await writer.finish(nil)
                // Kept once the client has the whole image: its wait does not include the blob store's fsync.
                await variants.keep(output, version: version, options: variantName)
            })
    }

    /// Who a route that serves both scopes acts as: the grant's identity, or the caller's.
    func actingIdentity(_ request: Request, _ context: Context) throws -> RequestIdentity {
        switch context.scopedIdentity {
        case .grant(let grant): grant.identity
        default: try context.scopedCaller().identity(method: request.method.rawValue, path: request.uri.path)
        }
    }

    func info(_ request: Request, _ context: Context, after prefix: String) async throws -> Response {
        let (bucket, key) = try target(request, context, after: prefix)
        let identity = try actingIdentity(request, context)
        guard let body = try await service.json(identity, ObjectQueries.info(bucket: bucket, key: key)) else {
            throw StorageError.objectNotFound
        }
        return Response.storageJSON(text: body)
    }

    // MARK: Listing, removing, moving, copying

    func list(_ request: Request, _ context: Context) async throws -> Response {
        try await listing(request, context, ObjectQueries.ListOptions.self, whenEmpty: "[]", ObjectQueries.list)
    }

    func listV2(_ request: Request, _ context: Context) async throws -> Response {
        try await listing(request, context, ObjectQueries.ListV2Options.self, whenEmpty: "{}", ObjectQueries.listV2)
    }

    /// A listing of a bucket the caller names, run as the caller: the policies decide which names appear.
    private func listing<Options: Decodable>(
        _ request: Request, _ context: Context, _ type: Options.Type, whenEmpty: String,
        _ query: (String, Options) throws(StorageError) -> PostgresQuery
    ) async throws -> Response {
        let caller = try context.scopedCaller()
        let bucket = try bucketParameter(context)
        let options = try await decode(type, request)
        _ = try await service.rules(of: bucket)
        let body = try await service.json(
            caller.identity(method: request.method.rawValue, path: request.uri.path), try query(bucket, options))
        return Response.storageJSON(text: body ?? whenEmpty)
    }

    struct RemoveRequest: Decodable {
        let prefixes: [String]
    }

    func remove(_ request: Request, _ context: Context) async throws -> Response {
        let caller = try context.scopedCaller()
        let bucket = try bucketParameter(context)
        let names = try await decode(RemoveRequest.self, request).prefixes
        guard (1...1000).contains(names.count) else { throw StorageError.invalidInput("prefixes must name 1 to 1000 objects") }
        _ = try await service.rules(of: bucket)
        let body = try await service.change(
            caller.identity(method: request.method.rawValue, path: request.uri.path), ObjectQueries.remove(bucket: bucket, names: names)
        )
        return Response.storageJSON(text: body ?? "[]")
    }

    func removeOne(_ request: Request, _ context: Context) async throws -> Response {
        let caller = try context.scopedCaller()
        let (bucket, key) = try target(request, context, after: "")
        let body = try await service.change(
            caller.identity(method: request.method.rawValue, path: request.uri.path),
            ObjectQueries.remove(bucket: bucket, names: [key.value]))
        guard let body, body != "[]" else {
            _ = try await service.rules(of: bucket)
            throw StorageError.objectNotFound
        }
        return try Response.storageJSON(["message": "Successfully deleted"])
    }

    struct TransferRequest: Decodable {
        let bucketId: String
        let sourceKey: String
        let destinationKey: String
        let destinationBucket: String?
    }

    func move(_ request: Request, _ context: Context) async throws -> Response {
        let caller = try context.scopedCaller()
        let (source, destination) = try await transfer(request)
        try await checkDestination(source: source, destination: destination, caller: caller, request: request)
        let identity = caller.identity(method: request.method.rawValue, path: request.uri.path)
        let moved = try await service.database.withRequestTransaction(identity, logger: context.logger) { connection in
            try await connection.affectedRows(ObjectQueries.move(from: source, to: destination), logger: context.logger)
        }
        guard moved == 1 else { throw StorageError.objectNotFound }
        return try Response.storageJSON(["message": "Successfully moved"])
    }

    func copy(_ request: Request, _ context: Context) async throws -> Response {
        let caller = try context.scopedCaller()
        let (source, destination) = try await transfer(request)
        try await checkDestination(source: source, destination: destination, caller: caller, request: request)
        let identity = caller.identity(method: request.method.rawValue, path: request.uri.path)
        guard let original = try await service.object(identity, bucket: source.bucket, key: source.key) else {
            throw StorageError.objectNotFound
        }
        let attributes = UploadAttributes(owner: caller.userID, mimeType: original.mimeType, cacheControl: original.cacheControl)
        let upsert = request.headers[.xUpsert]?.lowercased() == "true"
        try await service.authorizeUpload(
            identity, bucket: destination.bucket, key: destination.key, attributes: attributes, upsert: upsert)
        let staged = try await service.blobs.stageCopy(of: original.blob)
        _ = try await service.commitUpload(
            identity, bucket: destination.bucket, key: destination.key, staged: staged, attributes: attributes, upsert: upsert)
        return try Response.storageJSON(["Key": destination.bucket + "/" + destination.key.value])
    }

    private func transfer(_ request: Request) async throws -> ((bucket: String, key: ObjectKey), (bucket: String, key: ObjectKey)) {
        let body = try await decode(TransferRequest.self, request)
        do {
            return (
                (body.bucketId, try ObjectKey(body.sourceKey)),
                (body.destinationBucket ?? body.bucketId, try ObjectKey(body.destinationKey))
            )
        } catch {
            throw StorageError.invalidKey(error)
        }
    }

    /// A move or copy into another bucket must respect that bucket's limits, as an upload would.
    private func checkDestination(
        source: (bucket: String, key: ObjectKey), destination: (bucket: String, key: ObjectKey), caller: Caller, request: Request
    ) async throws {
        _ = try await service.rules(of: source.bucket)
        guard destination.bucket != source.bucket else { return }
        let rules = try await service.rules(of: destination.bucket)
        let identity = caller.identity(method: request.method.rawValue, path: request.uri.path)
        guard let object = try await service.object(identity, bucket: source.bucket, key: source.key) else {
            throw StorageError.objectNotFound
        }
        try rules.check(size: object.size)
        try rules.check(mimeType: object.mimeType)
    }

    // MARK: Signed URLs

    /// `expiresIn` in seconds, as a number or a numeric string (storage-js sends either).
    struct SignRequest: Decodable {
        let expiresIn: Int
        let paths: [String]?
        /// storage-js's `transform` option: the URL renders this transformation (`/render/image/sign`).
        let transform: [String: String]

        enum CodingKeys: String, CodingKey { case expiresIn, paths, transform }

        /// Numbers and text alike (`{width: 200}` or `{width: "200"}`); the options themselves are
        /// checked as a query's are.
        struct Value: Decodable {
            let text: String
            init(from decoder: any Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let number = try? container.decode(Int.self) {
                    text = String(number)
                } else if let value = try? container.decode(String.self) {
                    text = value
                } else {
                    throw StorageError.invalidInput("transform options are numbers or text")
                }
            }
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            if let number = try? container.decode(Int.self, forKey: .expiresIn) {
                expiresIn = number
            } else if let text = try? container.decode(String.self, forKey: .expiresIn),
                let number = Int(text.trimmingCharacters(in: .whitespaces))
            {
                expiresIn = number
            } else {
                throw StorageError.invalidInput("expiresIn must be a number of seconds")
            }
            paths = try container.decodeIfPresent([String].self, forKey: .paths)
            transform = try container.decodeIfPresent([String: Value].self, forKey: .transform)?.mapValues(\.text) ?? [:]
        }
    }

    func sign(_ request: Request, _ context: Context) async throws -> Response {
        let caller = try context.scopedCaller()
        let (bucket, key) = try target(request, context, after: "sign")
        let body = try await decode(SignRequest.self, request)
        let expiresIn = try Self.lifetime(body.expiresIn)
        // Checked now: a URL that could only ever answer 400 is not handed out.
        _ = try ImageTransformation(query: body.transform, limits: service.imageSettings)
        let visible = try await visibleKeys(caller, request, bucket: bucket, keys: [key.value])
        guard visible.contains(key.value) else { throw StorageError.objectNotFound }
        let token = try await service.signer.signDownload(
            bucket: bucket, key: key, expiresIn: expiresIn, transformations: body.transform)
        let route = body.transform.isEmpty ? "/object/sign/" : "/render/image/sign/"
        return try Response.storageJSON(["signedURL": "\(route)\(bucket)/\(Self.encodePath(key.value))?token=\(token)"])
    }

    /// One path of a batch signing: `error` and `signedURL` are null, not left out, when they do not apply
    /// (storage3 requires every key).
    struct SignedEntry: Encodable {
        let error: String?
        let path: String
        let signedURL: String?

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(error, forKey: .error)
            try container.encode(path, forKey: .path)
            try container.encode(signedURL, forKey: .signedURL)
        }

        enum CodingKeys: String, CodingKey { case error, path, signedURL }
    }

    func signMany(_ request: Request, _ context: Context) async throws -> Response {
        let caller = try context.scopedCaller()
        let bucket = try bucketParameter(context)
        let body = try await decode(SignRequest.self, request)
        let expiresIn = try Self.lifetime(body.expiresIn)
        guard let paths = body.paths, (1...1000).contains(paths.count) else {
            throw StorageError.invalidInput("paths must list 1 to 1000 objects")
        }
        let visible = try await visibleKeys(caller, request, bucket: bucket, keys: paths)
        var entries: [SignedEntry] = []
        for path in paths {
            guard visible.contains(path), let key = try? ObjectKey(path) else {
                entries.append(
                    SignedEntry(error: "Either the object does not exist or you do not have access to it", path: path, signedURL: nil))
                continue
            }
            let token = try await service.signer.signDownload(bucket: bucket, key: key, expiresIn: expiresIn)
            entries.append(
                SignedEntry(error: nil, path: path, signedURL: "/object/sign/\(bucket)/\(Self.encodePath(path))?token=\(token)"))
        }
        return try Response.storageJSON(entries)
    }

    private func visibleKeys(_ caller: Caller, _ request: Request, bucket: String, keys: [String]) async throws -> Set<String> {
        _ = try await service.rules(of: bucket)
        let text = try await service.json(
            caller.identity(method: request.method.rawValue, path: request.uri.path), ObjectQueries.visible(bucket: bucket, keys: keys))
        return Set((try? JSONDecoder().decode([String].self, from: Data((text ?? "[]").utf8))) ?? [])
    }

    static func lifetime(_ seconds: Int) throws(StorageError) -> Int {
        guard (1...SignedURLSigner.maximumLifetime).contains(seconds) else {
            throw .invalidInput("expiresIn must be between 1 and \(SignedURLSigner.maximumLifetime) seconds")
        }
        return seconds
    }

    // MARK: Helpers

    func bucketParameter(_ context: Context) throws(StorageError) -> String {
        guard let bucket = context.parameters.get("bucket"), let decoded = bucket.removingPercentEncoding, !decoded.isEmpty else {
            throw .bucketNotFound
        }
        return decoded
    }

    /// The bucket and key of the request. The key is taken from the raw path (every segment after the
    /// bucket, percent-decoded once) so that `//`, `..` and `%2e%2e` reach validation instead of being
    /// normalised away.
    /// `prefix` is the route's constant part between `storage/v1/object/` and `:bucket` ("" for none).
    func target(_ request: Request, _ context: Context, after prefix: String) throws(StorageError) -> (String, ObjectKey) {
        let bucket = try bucketParameter(context)
        let fixed = Self.basePath.split(separator: "/").count + prefix.split(separator: "/").count + 1
        // The leading "/" makes an empty first element.
        let parts = request.uri.path.split(separator: "/", omittingEmptySubsequences: false).dropFirst(1 + fixed)
        guard let raw = parts.joined(separator: "/").removingPercentEncoding else {
            throw .invalidKey(.empty)
        }
        do {
            return (bucket, try ObjectKey(raw))
        } catch {
            throw .invalidKey(error)
        }
    }

    func token(_ request: Request) throws -> String {
        guard let token = try query(request)["token"], !token.isEmpty else {
            throw StorageError(.badRequest, "InvalidJWT", "the signed URL has no token")
        }
        return token
    }

    func query(_ request: Request) throws -> QueryString {
        try request.queryString { StorageError.invalidInput("the query string is not valid percent-encoding: \($0.part)") }
    }

    func decode<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T {
        let data = try await request.bodyData(
            upTo: Self.maxJSONBytes, tooLarge: StorageError(.contentTooLarge, "Payload too large", "the JSON body is limited to 1 MiB"))
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError.invalidInput("the body is not the JSON this endpoint expects")
        }
    }

    /// Keys go into URLs segment by segment; `/` stays a separator.
    static func encodePath(_ key: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "?#%;")
        return key.addingPercentEncoding(withAllowedCharacters: allowed) ?? key
    }

}
