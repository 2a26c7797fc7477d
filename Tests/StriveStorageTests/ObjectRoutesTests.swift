import Foundation
import HTTPTypes
import NIOCore
import StriveCore
import StriveS3
import StriveStorage
import StriveTestSupport
import Testing

// One test at a time: each runs a server, twice (local store and S3), beside every other suite.
@Suite("Storage objects over HTTP", .serialized)
struct ObjectRoutesTests {
    static let pdf = Array("%PDF-1.7 strive test document\n".utf8)
    static let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + Array(repeating: 7, count: 100)

    /// The original system's storage test: upload to all three buckets, a signed URL for the private one,
    /// public URLs for the public ones, download, delete.
    @Test(arguments: StorageBackendKind.allCases) func theOriginalScenarioThroughStorageJSRequestShapes(backend: StorageBackendKind)
        async throws
    {
        try await StorageHarness.run(backend: backend) { harness in
            let attachment = "\(harness.id("orgA"))/task/\(harness.id("taskA"))/report.pdf"
            let uploaded = try await harness.uploadForm(
                "attachments", attachment, Self.pdf, type: "application/pdf", as: .member, metadata: #"{"source":"test"}"#)
            #expect(uploaded.status == .ok, "\(uploaded.text)")
            #expect(uploaded.object["Key"] as? String == "attachments/" + attachment)
            #expect(UUID(uuidString: uploaded.object["Id"] as? String ?? "") != nil)

            let avatar = "\(harness.id("member"))/profile.png"
            let avatarUpload = try await harness.upload("avatars", avatar, Self.png, type: "image/png", as: .member)
            #expect(avatarUpload.status == .ok, "\(avatarUpload.text)")
            #expect(
                try await harness.upload("public-assets", "brand/new.png", Self.png, type: "image/png", as: .platformAdmin).status == .ok)

            let downloaded = try await harness.send(.get, "object/attachments/\(attachment)", as: .member)
            #expect(downloaded.status == .ok)
            #expect(Array(downloaded.body) == Self.pdf)
            #expect(downloaded["Content-Type"] == "application/pdf")
            #expect(downloaded["Cache-Control"] == "max-age=3600")
            #expect(downloaded["Content-Length"] == String(Self.pdf.count))
            #expect(downloaded["ETag"]?.hasPrefix("\"") == true)
            #expect(downloaded["Last-Modified"]?.hasSuffix("GMT") == true)

            // The private bucket: a signed URL works without credentials; its public URL does not.
            let signed = try await harness.send(.post, "object/sign/attachments/\(attachment)", as: .member, json: #"{"expiresIn":60}"#)
            let signedURL = try #require(signed.object["signedURL"] as? String)
            #expect(signedURL.hasPrefix("/object/sign/attachments/"))
            let viaSigned = try await harness.send(.get, String(signedURL.dropFirst()), as: nil)
            #expect(viaSigned.status == .ok)
            #expect(Array(viaSigned.body) == Self.pdf)
            #expect(try await harness.send(.get, "object/public/attachments/\(attachment)", as: nil).status == .notFound)

            // Public buckets: no credentials needed.
            let publicAvatar = try await harness.send(.get, "object/public/avatars/\(avatar)", as: nil)
            #expect(publicAvatar.status == .ok)
            #expect(Array(publicAvatar.body) == Self.png)
            #expect(try await harness.send(.get, "object/public/public-assets/brand/new.png", as: nil).status == .ok)

            let info = try await harness.send(.get, "object/info/attachments/\(attachment)", as: .member)
            #expect(info.object["size"] as? Int == Self.pdf.count)
            #expect(info.object["content_type"] as? String == "application/pdf")
            #expect((info.object["metadata"] as? [String: Any])?["source"] as? String == "test")

            let blobsBefore = try await harness.files(in: "blobs").count
            let removed = try await harness.send(.delete, "object/attachments", as: .member, json: #"{"prefixes":["\#(attachment)"]}"#)
            #expect(removed.status == .ok)
            #expect(removed.array.map { $0["name"] as? String } == [attachment])
            #expect(try await harness.send(.get, "object/attachments/\(attachment)", as: .member).status == .notFound)
            #expect(try await harness.files(in: "blobs").count == blobsBefore - 1)
        }
    }

    enum Op: String, CaseIterable { case upload, download, list, sign, delete }

    /// The bucket policies, caller by caller, through every object operation (✓ allowed, · refused).
    @Test(arguments: StorageBackendKind.allCases) func eachBucketAndRoleGetsWhatThePoliciesSay(backend: StorageBackendKind) async throws {
        try await StorageHarness.run(backend: backend) { harness in
            let actors: [TenantFixture.Actor] = [.anon, .outsider, .member, .owner, .platformAdmin, .service]
            // Per bucket and operation, one character per actor above.
            let expected: [String: [Op: String]] = [
                "attachments": [.upload: "··✓✓·✓", .download: "··✓✓·✓", .list: "··✓✓·✓", .sign: "··✓✓·✓", .delete: "··✓✓·✓"],
                // Public buckets are read by public URL (no policy); listing and the authenticated routes belong
                // to the folder's user and platform admins, so the anon key cannot enumerate accounts.
                "avatars": [.upload: "·✓✓✓✓✓", .download: "··✓·✓✓", .list: "··✓·✓✓", .sign: "··✓·✓✓", .delete: "··✓··✓"],
                "public-assets": [.upload: "····✓✓", .download: "····✓✓", .list: "····✓✓", .sign: "····✓✓", .delete: "····✓✓"],
            ]
            func folder(_ bucket: String, _ actor: TenantFixture.Actor) -> String {
                switch bucket {
                case "attachments": "\(harness.id("orgA"))/task/\(harness.id("taskA"))"
                case "avatars":
                    actor == .anon || actor == .service ? harness.id("member") : harness.fixture.userID(of: actor)!.uuidString.lowercased()
                default: "brand"
                }
            }
            var mismatches: [String] = []
            for (bucket, operations) in expected.sorted(by: { $0.key < $1.key }) {
                let type = bucket == "attachments" ? "application/pdf" : "image/png"
                // The object everyone reads, lists, signs and tries to delete: uploaded by the member (the
                // platform admin for public-assets), through the service key so setup never depends on policies.
                let shared = "\(folder(bucket, bucket == "public-assets" ? .platformAdmin : .member))/shared.bin"
                #expect(try await harness.upload(bucket, shared, Self.png, type: type, as: .service).status == .ok)
                try await harness.database.withOwnerConnection { connection in
                    let owner = harness.fixture.userID(of: bucket == "public-assets" ? .platformAdmin : .member)!
                    try await connection.run(
                        "update storage.objects set owner = \(owner), owner_id = \(owner.uuidString.lowercased()) where name = \(shared)",
                        logger: harness.database.logger)
                }
                for (index, actor) in actors.enumerated() {
                    func allowed(_ op: Op) -> Bool { Array(operations[op]!)[index] == "✓" }
                    let mine = "\(folder(bucket, actor))/\(actor.rawValue)-\(UUID().uuidString.prefix(6)).bin"
                    let upload = try await harness.upload(bucket, mine, Self.png, type: type, as: actor)
                    if (upload.status == .ok) != allowed(.upload) {
                        mismatches.append("\(bucket) upload \(actor): \(upload.status) \(upload.text)")
                    }
                    if upload.status != .ok && ![.forbidden, .unauthorized].contains(upload.status) {
                        mismatches.append("\(bucket) upload \(actor) refused with \(upload.status)")
                    }
                    let download = try await harness.send(.get, "object/\(bucket)/\(shared)", as: actor)
                    if (download.status == .ok) != allowed(.download) {
                        mismatches.append("\(bucket) download \(actor): \(download.status)")
                    }
                    let prefix = shared.split(separator: "/").dropLast().joined(separator: "/")
                    let list = try await harness.send(.post, "object/list/\(bucket)", as: actor, json: #"{"prefix":"\#(prefix)"}"#)
                    let listed = list.array.contains { $0["name"] as? String == "shared.bin" }
                    if listed != allowed(.list) { mismatches.append("\(bucket) list \(actor): \(list.status) \(list.text.prefix(80))") }
                    let sign = try await harness.send(.post, "object/sign/\(bucket)/\(shared)", as: actor, json: #"{"expiresIn":"60"}"#)
                    if (sign.status == .ok) != allowed(.sign) { mismatches.append("\(bucket) sign \(actor): \(sign.status)") }
                }
                // Deletes last, in an order where a refused delete leaves the object for the next caller.
                for (index, actor) in actors.enumerated() {
                    let victim = "\(folder(bucket, bucket == "public-assets" ? .platformAdmin : .member))/victim-\(actor.rawValue).bin"
                    #expect(try await harness.upload(bucket, victim, Self.png, type: type, as: .service).status == .ok)
                    let owner = harness.fixture.userID(of: bucket == "public-assets" ? .platformAdmin : .member)!
                    try await harness.database.withOwnerConnection { connection in
                        try await connection.run(
                            "update storage.objects set owner = \(owner) where name = \(victim)", logger: harness.database.logger)
                    }
                    _ = try await harness.send(.delete, "object/\(bucket)", as: actor, json: #"{"prefixes":["\#(victim)"]}"#)
                    let gone =
                        try await harness.ownerValue("select count(*)::int from storage.objects where name = '\(victim)'", as: Int.self)
                        == 0
                    if gone != (Array(operations[.delete]!)[index] == "✓") { mismatches.append("\(bucket) delete \(actor): gone=\(gone)") }
                }
            }
            #expect(mismatches.isEmpty, "\(mismatches.joined(separator: "\n"))")
        }
    }
}
