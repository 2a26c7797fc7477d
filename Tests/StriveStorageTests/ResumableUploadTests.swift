import Foundation
import HTTPTypes
import NIOCore
import StriveCore
import StriveStorage
import StriveTestSupport
import Testing

/// TUS resumable uploads over real HTTP, on the local store and on S3 (moto): created under the policies,
/// appended in parts, visible only when complete, resumable, refused at a wrong offset, terminated, expired.
@Suite("Resumable uploads (TUS)")
struct ResumableUploadTests {
    static func metadata(_ pairs: [(String, String)]) -> String {
        pairs.map { "\($0) \(Data($1.utf8).base64EncodedString())" }.joined(separator: ",")
    }

    static func bytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    func create(
        _ harness: StorageHarness, bucket: String, name: String, length: Int, as actor: TenantFixture.Actor = .member,
        type: String = "application/pdf", body: [UInt8]? = nil
    ) async throws -> StorageHarness.Reply {
        var headers = [
            "Tus-Resumable": "1.0.0", "Upload-Length": String(length), "x-upsert": "true",
            "Upload-Metadata": Self.metadata([
                ("bucketName", bucket), ("objectName", name), ("contentType", type), ("cacheControl", "3600"),
            ]),
        ]
        if body != nil { headers["Content-Type"] = "application/offset+octet-stream" }
        return try await harness.send(.post, "upload/resumable", as: actor, headers: headers, body: body.map { ByteBuffer(bytes: $0) })
    }

    func patch(
        _ harness: StorageHarness, _ location: String, offset: Int, _ bytes: ArraySlice<UInt8>, as actor: TenantFixture.Actor = .member
    )
        async throws -> StorageHarness.Reply
    {
        try await harness.send(
            .patch, String(location.dropFirst("/storage/v1/".count)), as: actor,
            headers: ["Tus-Resumable": "1.0.0", "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream"],
            body: ByteBuffer(bytes: bytes))
    }

    func head(_ harness: StorageHarness, _ location: String, as actor: TenantFixture.Actor = .member) async throws -> StorageHarness.Reply {
        try await harness.send(.head, String(location.dropFirst("/storage/v1/".count)), as: actor, headers: ["Tus-Resumable": "1.0.0"])
    }

    /// What the store keeps for unfinished uploads: their files on disk, their parts (a blob each) on S3.
    func keptForUploads(_ harness: StorageHarness) async throws -> Int {
        guard harness.s3 == nil else {
            return try await harness.ownerValue("select count(*)::int from storage.resumable_parts", as: Int.self) ?? -1
        }
        return try FileManager.default.contentsOfDirectory(atPath: harness.storageDirectory + "/uploads").count
    }

    /// 5 MiB then the rest: on S3 the parts are large enough to become a multipart object's parts, copied by S3.
    @Test(arguments: StorageBackendKind.allCases)
    func anUploadInPartsAppearsOnlyWhenCompleteAndResumesFromItsOffset(backend: StorageBackendKind) async throws {
        try await StorageHarness.run(backend: backend) { harness in
            let name = "\(harness.id("orgA"))/task/\(harness.id("taskA"))/big.pdf"
            let split = 5 * 1024 * 1024
            let content = Self.bytes(split + 1024 * 1024 + 5)
            let created = try await create(harness, bucket: "attachments", name: name, length: content.count)
            #expect(created.status == .created, "\(created.text)")
            #expect(created["Tus-Resumable"] == "1.0.0" && created["Upload-Expires"] != nil)
            let location = try #require(created["Location"])
            #expect(location.hasPrefix("/storage/v1/upload/resumable/"))
            #expect(try await head(harness, location)["Upload-Offset"] == "0")

            let first = try await patch(harness, location, offset: 0, content[0..<split])
            #expect(first.status == .noContent && first["Upload-Offset"] == String(split), "\(first.text)")
            let stale = try await patch(harness, location, offset: 0, content[0..<10])
            #expect(stale.status == .conflict, "a wrong offset is refused: \(stale.text)")
            #expect(try await harness.send(.get, "object/attachments/\(name)", as: .member).status != .ok, "nothing before the last byte")

            // A client that lost its place asks, and goes on from there.
            let resumed = try await head(harness, location)
            #expect(resumed["Upload-Offset"] == String(split) && resumed["Upload-Length"] == String(content.count))
            #expect(try await head(harness, location, as: .owner).status == .notFound, "an upload is its creator's")
            #expect(try await keptForUploads(harness) == 1)
            let rest = try await patch(harness, location, offset: split, content[split...])
            #expect(rest.status == .noContent && rest["Upload-Offset"] == String(content.count), "\(rest.text)")

            let downloaded = try await harness.send(.get, "object/attachments/\(name)", as: .member)
            #expect(downloaded.status == .ok && Array(downloaded.body) == content)
            #expect(try await head(harness, location).status == .notFound, "a finished upload is gone")
            #expect(try await keptForUploads(harness) == 0)

            // Small parts (below S3's 5 MiB) are read back in order instead.
            let small = Self.bytes(3000)
            let smallName = name + ".small"
            let other = try #require(try await create(harness, bucket: "attachments", name: smallName, length: small.count)["Location"])
            for start in stride(from: 0, to: small.count, by: 1000) {
                let reply = try await patch(harness, other, offset: start, small[start..<(start + 1000)])
                #expect(reply.status == .noContent, "\(reply.text)")
            }
            #expect(Array(try await harness.send(.get, "object/attachments/\(smallName)", as: .member).body) == small)
            #expect(try await keptForUploads(harness) == 0)
        }
    }

    @Test func thePoliciesDecideAtCreationAndBadRequestsChangeNothing() async throws {
        try await StorageHarness.run { harness in
            let refused = try await create(harness, bucket: "public-assets", name: "brand/x.png", length: 10, type: "image/png")
            #expect(refused.status == .forbidden, "a member may not write public-assets: \(refused.text)")
            let outsider = try await create(
                harness, bucket: "attachments", name: "\(harness.id("orgA"))/task/\(harness.id("taskA"))/o.pdf", length: 10, as: .outsider)
            #expect(outsider.status == .forbidden)
            let traversal = try await create(harness, bucket: "attachments", name: "../../etc/passwd", length: 10)
            #expect(traversal.status == .badRequest)
            let noVersion = try await harness.send(.post, "upload/resumable", as: .member, headers: ["Upload-Length": "10"])
            #expect(noVersion.status == .preconditionFailed)
            #expect(try await harness.ownerValue("select count(*)::int from storage.resumable_uploads", as: Int.self) == 0)

            // creation-with-upload: the whole object in the POST.
            let name = "\(harness.id("orgA"))/task/\(harness.id("taskA"))/small.pdf"
            let content = Self.bytes(1000)
            let whole = try await create(harness, bucket: "attachments", name: name, length: content.count, body: content)
            #expect(whole.status == .created && whole["Upload-Offset"] == "1000", "\(whole.text)")
            #expect(Array(try await harness.send(.get, "object/attachments/\(name)", as: .member).body) == content)

            // Too many bytes for the declared length are refused and leave the offset where it was.
            let other = try await create(harness, bucket: "attachments", name: name + ".2", length: 10)
            let location = try #require(other["Location"])
            let tooMuch = try await patch(harness, location, offset: 0, Self.bytes(20)[...])
            #expect(tooMuch.status == .contentTooLarge, "\(tooMuch.text)")
            #expect(try await head(harness, location)["Upload-Offset"] == "0")

            // Terminated: gone, with its bytes.
            _ = try await patch(harness, location, offset: 0, Self.bytes(4)[...])
            let deleted = try await harness.send(
                .delete, String(location.dropFirst("/storage/v1/".count)), as: .member, headers: ["Tus-Resumable": "1.0.0"])
            #expect(deleted.status == .noContent)
            #expect(try await head(harness, location).status == .notFound)
            #expect(try await keptForUploads(harness) == 0)

            // Expired: answered 410, and the sweep takes its parts.
            let late = try await create(harness, bucket: "attachments", name: name + ".3", length: 10)
            let lateLocation = try #require(late["Location"])
            _ = try await patch(harness, lateLocation, offset: 0, Self.bytes(4)[...])
            _ = try await harness.ownerValue(
                "update storage.resumable_uploads set expires_at = now() - interval '1 second' returning 1", as: Int.self)
            #expect(try await head(harness, lateLocation).status == .gone)
            #expect(try await keptForUploads(harness) == 1)
            #expect(try await ResumableUploads(storage: harness.services.storage).sweepExpired() == 1)
            #expect(try await keptForUploads(harness) == 0)
        }
    }
}
