import Foundation
import HTTPTypes
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import StriveCore
import StriveDatabase
import StriveS3
import StriveStorage
import StriveTestSupport
import Testing

// One test at a time: each runs a server, twice (local store and S3), beside every other suite.
@Suite("Storage objects: hostile input, races, signed URLs, HTTP details", .serialized)
struct ObjectEdgeTests {
    static let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47] + Array(repeating: 1, count: 60)

    @Test(arguments: StorageBackendKind.allCases) func badInputIsRefusedAndLeavesNothing(backend: StorageBackendKind) async throws {
        try await StorageHarness.run(backend: backend) { harness in
            let folder = harness.id("member")
            let objectsBefore = try await harness.ownerValue("select count(*)::int from storage.objects", as: Int.self)

            // Over the bucket's limit, declared: refused before the body is read.
            let oversized = try await harness.upload(
                "avatars", "\(folder)/big.png", Array(repeating: 0, count: 5 * 1024 * 1024 + 1), type: "image/png", as: .member)
            #expect(oversized.status == .contentTooLarge)
            #expect(oversized.object["statusCode"] as? String == "413")
            // Over the limit without a declared length (chunked): cut off while streaming.
            var chunked = ByteBuffer()
            chunked.writeString(
                "POST /storage/v1/object/avatars/\(folder)/chunked.png HTTP/1.1\r\nHost: x\r\napikey: \(harness.anonKey)\r\n"
                    + "Authorization: Bearer \(harness.tokens[.member]!)\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            )
            for _ in 0..<6 {
                chunked.writeString(String(1024 * 1024, radix: 16) + "\r\n")
                chunked.writeBytes(Array(repeating: 1, count: 1024 * 1024))
                chunked.writeString("\r\n")
            }
            chunked.writeString("0\r\n\r\n")
            let chunkedReply = try await harness.sendRaw(chunked)
            #expect(chunkedReply.hasPrefix("HTTP/1.1 413"), "\(chunkedReply.prefix(200))")

            // MIME types the bucket does not allow, raw and in a form.
            let wrongType = try await harness.upload("avatars", "\(folder)/x.txt", Array("hello".utf8), type: "text/plain", as: .member)
            #expect(wrongType.status == .unsupportedMediaType)
            #expect(wrongType.object["statusCode"] as? String == "415")
            #expect(
                try await harness.uploadForm("avatars", "\(folder)/y.txt", Array("hi".utf8), type: "text/html", as: .member).status
                    == .unsupportedMediaType)

            // Traversal and malformed keys, literal and percent-encoded.
            for key in [
                "../x.png", "a/../../b.png", "%2e%2e/x.png", "\(folder)/%2E%2E/%2e%2e/x.png", "\(folder)//x.png", "\(folder)/a%00b.png",
                "%2Fetc/passwd",
            ] {
                let reply = try await harness.upload("avatars", key, Self.png, type: "image/png", as: .member)
                #expect(reply.status == .badRequest, "\(key) → \(reply.status)")
                #expect(reply.error == "InvalidKey", "\(key) → \(reply.text)")
            }
            // Malformed bodies.
            let noFile = try await harness.send(
                .post, "object/avatars/\(folder)/form.png", as: .member, headers: ["content-type": "multipart/form-data; boundary=xyz"],
                body: ByteBuffer(string: "--xyz\r\nContent-Disposition: form-data; name=\"cacheControl\"\r\n\r\n60\r\n--xyz--\r\n"))
            #expect(noFile.status == .badRequest)
            #expect(try await harness.send(.post, "object/list/avatars", as: .member, json: "{not json").status == .badRequest)
            #expect(try await harness.send(.post, "object/list/avatars", as: .member, json: #"{"limit":"many"}"#).status == .badRequest)
            #expect(
                try await harness.send(.post, "object/list/avatars", as: .member, json: #"{"sortBy":{"column":"name; drop table x"}}"#)
                    .status
                    == .badRequest)
            #expect(try await harness.send(.post, "object/move", as: .member, json: #"{"bucketId":"avatars"}"#).status == .badRequest)
            let badMetadata = try await harness.send(
                .post, "object/avatars/\(folder)/m.png", as: .member, headers: ["content-type": "image/png", "x-metadata": "!!notbase64"],
                body: ByteBuffer(bytes: Self.png))
            #expect(badMetadata.status == .badRequest)
            // No credentials, bad credentials, unknown bucket.
            #expect(try await harness.upload("avatars", "\(folder)/n.png", Self.png, type: "image/png", as: nil).status == .unauthorized)
            let forged = try await harness.send(.get, "object/avatars/\(folder)/me.png", as: nil, headers: ["apikey": "not.a.jwt"])
            #expect(forged.status == .unauthorized)
            #expect(try await harness.upload("nope", "a.png", Self.png, type: "image/png", as: .member).status == .notFound)

            #expect(try await harness.ownerValue("select count(*)::int from storage.objects", as: Int.self) == objectsBefore)
            #expect(try await harness.files(in: "blobs").isEmpty)
            #expect(try await eventually { try await harness.files(in: "staging").isEmpty })
        }
    }

    @Test(arguments: StorageBackendKind.allCases) func unicodeKeysAndEmptyFilesRoundTrip(backend: StorageBackendKind) async throws {
        try await StorageHarness.run(backend: backend) { harness in
            let key = "\(harness.id("orgA"))/task/\(harness.id("taskA"))/résumé ✓ (final) 日本.pdf"
            let encoded = key.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "()")))!
            let uploaded = try await harness.upload("attachments", encoded, Array("bytes".utf8), type: "application/pdf", as: .member)
            #expect(uploaded.status == .ok, "\(uploaded.text)")
            #expect(uploaded.object["Key"] as? String == "attachments/" + key)
            #expect(try await harness.ownerValue("select count(*)::int from storage.objects where name = '\(key)'", as: Int.self) == 1)
            #expect(
                String(decoding: try await harness.send(.get, "object/attachments/\(encoded)", as: .member).body, as: UTF8.self) == "bytes")
            let listed = try await harness.send(
                .post, "object/list/attachments", as: .member,
                json: #"{"prefix":"\#(harness.id("orgA"))/task/\#(harness.id("taskA"))","search":"RÉS"}"#
            )
            #expect(listed.array.map { $0["name"] as? String } == ["résumé ✓ (final) 日本.pdf"])

            let empty = "\(harness.id("orgA"))/task/\(harness.id("taskA"))/empty.pdf"
            #expect(try await harness.upload("attachments", empty, [], type: "application/pdf", as: .member).status == .ok)
            let downloaded = try await harness.send(.get, "object/attachments/\(empty)", as: .member)
            #expect(downloaded.status == .ok)
            #expect(downloaded.body.isEmpty)
            #expect(downloaded["Content-Length"] == "0")
            let signed = try await harness.send(
                .post, "object/sign/attachments", as: .member,
                json: #"{"expiresIn":60,"paths":["\#(empty)","\#(harness.id("orgA"))/missing.pdf"]}"#)
            #expect(signed.array.count == 2)
            #expect(signed.array.first?["signedURL"] is String)
            #expect(signed.array.last?["error"] is String)
        }
    }

    @Test(arguments: StorageBackendKind.allCases) func concurrentUploadsOfOneKeyHaveExactlyOneWinner(backend: StorageBackendKind)
        async throws
    {
        try await StorageHarness.run(backend: backend) { harness in
            let key = "\(harness.id("member"))/race.png"
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for index in 0..<8 {
                    group.addTask {
                        try await harness.upload("avatars", key, Self.png + [UInt8(index)], type: "image/png", as: .member).status
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == .ok }.count == 1, "\(statuses)")
            #expect(statuses.filter { $0 == .conflict }.count == 7, "\(statuses)")
            #expect(
                try await eventually {
                    let blobs = try await harness.files(in: "blobs")
                    let staging = try await harness.files(in: "staging")
                    return blobs.count == 1 && staging.isEmpty
                })

            // With x-upsert every upload succeeds, one version remains and the replaced bytes are deleted.
            let upserts = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for index in 0..<8 {
                    group.addTask {
                        try await harness.upload("avatars", key, Self.png + [UInt8(index)], type: "image/png", as: .member, upsert: true)
                            .status
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(upserts.allSatisfy { $0 == .ok }, "\(upserts)")
            #expect(try await harness.ownerValue("select count(*)::int from storage.objects where name = '\(key)'", as: Int.self) == 1)
            #expect(try await eventually { try await harness.files(in: "blobs").count == 1 })
            let final = try await harness.send(.get, "object/avatars/\(key)", as: .member)
            #expect(final.body.count == Self.png.count + 1)
        }
    }

    @Test(arguments: StorageBackendKind.allCases) func signedURLsExpireAndCannotBeTamperedWithOrReused(backend: StorageBackendKind)
        async throws
    {
        try await StorageHarness.run(backend: backend) { harness in
            let base = "\(harness.id("orgA"))/task/\(UUID().uuidString.lowercased())"
            for name in ["a.pdf", "b.pdf"] {
                #expect(
                    try await harness.upload("attachments", "\(base)/\(name)", Array(name.utf8), type: "application/pdf", as: .member)
                        .status
                        == .ok)
            }
            func signed(_ name: String, _ expiresIn: String) async throws -> String {
                let reply = try await harness.send(
                    .post, "object/sign/attachments/\(base)/\(name)", as: .member, json: #"{"expiresIn":\#(expiresIn)}"#)
                return try #require(reply.object["signedURL"] as? String)
            }
            // expiresIn as storage-js may send it, a string; checked for expiry at the end.
            let shortLived = try await signed("a.pdf", "\"1\"")
            let url = try await signed("a.pdf", "60")
            #expect(try await harness.send(.get, String(url.dropFirst()), as: nil).status == .ok)
            let token = String(url.split(separator: "=").last!)

            // Another path with this token, a tampered token, an access token, no token.
            let other = try await harness.send(.get, "object/sign/attachments/\(base)/b.pdf?token=\(token)", as: nil)
            #expect(other.status == .badRequest)
            #expect(other.error == "InvalidSignature")
            var tampered = Array(token)
            tampered[tampered.count - 3] = tampered[tampered.count - 3] == "A" ? "B" : "A"
            #expect(
                try await harness.send(.get, "object/sign/attachments/\(base)/a.pdf?token=\(String(tampered))", as: nil).error
                    == "InvalidJWT")
            #expect(
                try await harness.send(.get, "object/sign/attachments/\(base)/a.pdf?token=\(harness.tokens[.member]!)", as: nil).status
                    == .badRequest)
            #expect(try await harness.send(.get, "object/sign/attachments/\(base)/a.pdf", as: nil).status == .badRequest)
            // Outsiders cannot sign what they cannot read; lifetimes are bounded.
            #expect(
                try await harness.send(.post, "object/sign/attachments/\(base)/a.pdf", as: .outsider, json: #"{"expiresIn":60}"#).status
                    == .notFound)
            #expect(
                try await harness.send(.post, "object/sign/attachments/\(base)/a.pdf", as: .member, json: #"{"expiresIn":0}"#).status
                    == .badRequest)
            #expect(
                try await harness.send(.post, "object/sign/attachments/\(base)/a.pdf", as: .member, json: #"{"expiresIn":"soon"}"#).status
                    == .badRequest)

            try await Task.sleep(for: .seconds(2.1))
            let expired = try await harness.send(.get, String(shortLived.dropFirst()), as: nil)
            #expect(expired.status == .badRequest)
            #expect((expired.object["message"] as? String)?.contains("expired") == true)

            // Signed uploads: whoever may write signs; the token uploads once, as that user.
            let uploadSign = try await harness.send(.post, "object/upload/sign/attachments/\(base)/c.pdf", as: .member)
            let uploadURL = try #require(uploadSign.object["url"] as? String)
            #expect(try await harness.send(.post, "object/upload/sign/attachments/\(base)/c.pdf", as: .outsider).status == .forbidden)
            let put = try await harness.send(
                .put, String(uploadURL.dropFirst()), as: nil, headers: ["content-type": "application/pdf"],
                body: ByteBuffer(string: "signed upload"))
            #expect(put.status == .ok, "\(put.text)")
            #expect(
                try await harness.ownerValue("select owner_id from storage.objects where name = '\(base)/c.pdf'", as: String.self)
                    == harness.id("member"))
            #expect(
                try await harness.send(
                    .put, String(uploadURL.dropFirst()), as: nil, headers: ["content-type": "application/pdf"],
                    body: ByteBuffer(string: "again")
                ).status == .conflict)
            let downloadToken = token
            #expect(
                try await harness.send(
                    .put, "object/upload/sign/attachments/\(base)/a.pdf?token=\(downloadToken)", as: nil, body: ByteBuffer(string: "x")
                ).status == .badRequest)
        }
    }

    @Test(arguments: StorageBackendKind.allCases) func downloadsSpeakConditionalRequestsAndRanges(backend: StorageBackendKind) async throws
    {
        try await StorageHarness.run(backend: backend) { harness in
            let key = "brand/range.bin"
            let bytes = (0..<1000).map { UInt8($0 % 251) }
            #expect(try await harness.upload("public-assets", key, bytes, type: "application/pdf", as: .platformAdmin).status == .ok)
            let first = try await harness.send(.get, "object/public/public-assets/\(key)", as: nil)
            let eTag = try #require(first["ETag"])
            #expect(first["Accept-Ranges"] == "bytes")

            let notModified = try await harness.send(.get, "object/public/public-assets/\(key)", as: nil, headers: ["if-none-match": eTag])
            #expect(notModified.status == .notModified)
            #expect(notModified.body.isEmpty)
            #expect(
                try await harness.send(.get, "object/public-assets/\(key)", as: .platformAdmin, headers: ["if-none-match": "\"other\""])
                    .status
                    == .ok)

            let part = try await harness.send(.get, "object/public-assets/\(key)", as: .platformAdmin, headers: ["range": "bytes=10-19"])
            #expect(part.status == .partialContent)
            #expect(Array(part.body) == Array(bytes[10..<20]))
            #expect(part["Content-Range"] == "bytes 10-19/1000")
            let suffix = try await harness.send(.get, "object/public-assets/\(key)", as: .platformAdmin, headers: ["range": "bytes=-5"])
            #expect(Array(suffix.body) == Array(bytes[995...]))
            let open = try await harness.send(.get, "object/public-assets/\(key)", as: .platformAdmin, headers: ["range": "bytes=990-"])
            #expect(open.body.count == 10)
            let outside = try await harness.send(.get, "object/public-assets/\(key)", as: .platformAdmin, headers: ["range": "bytes=5000-"])
            #expect(outside.status == .rangeNotSatisfiable)
            #expect(outside["Content-Range"] == "bytes */1000")

            let head = try await harness.send(.head, "object/public-assets/\(key)", as: .platformAdmin)
            #expect(head.status == .ok)
            #expect(head["Content-Length"] == "1000")
            #expect(head.body.isEmpty)
            #expect(try await harness.send(.head, "object/public-assets/brand/missing.bin", as: .member).status == .notFound)

            // Supabase Storage's header byte for byte: encodeURIComponent's encoding in both parameters.
            let named = try await harness.send(.get, "object/public/public-assets/\(key)?download=r%C3%A9port%201.pdf", as: nil)
            #expect(named["Content-Disposition"] == "attachment; filename=r%C3%A9port%201.pdf; filename*=UTF-8''r%C3%A9port%201.pdf")

            // Replacing the object changes its validator.
            #expect(
                try await harness.upload("public-assets", key, [1, 2, 3], type: "application/pdf", as: .platformAdmin, method: .put).status
                    == .ok
            )
            #expect(
                try await harness.send(.get, "object/public/public-assets/\(key)", as: nil, headers: ["if-none-match": eTag]).status == .ok)
        }
    }

    @Test(arguments: StorageBackendKind.allCases) func listingMovingCopyingAndTheAttachmentLink(backend: StorageBackendKind) async throws {
        try await StorageHarness.run(backend: backend) { harness in
            let base = "\(harness.id("orgA"))/task/\(UUID().uuidString.lowercased())"
            for name in ["b.pdf", "a.pdf", "sub/c.pdf", "sub/deeper/d.pdf"] {
                #expect(
                    try await harness.upload("attachments", "\(base)/\(name)", Array(name.utf8), type: "application/pdf", as: .member)
                        .status
                        == .ok)
            }
            let listed = try await harness.send(
                .post, "object/list/attachments", as: .member, json: #"{"prefix":"\#(base)/","sortBy":{"column":"name","order":"desc"}}"#)
            let names = listed.array.compactMap { $0["name"] as? String }
            #expect(Set(names) == ["a.pdf", "b.pdf", "sub"])
            #expect(names == names.sorted(by: >))
            let folder = try #require(listed.array.first { $0["name"] as? String == "sub" })
            #expect(folder["id"] is NSNull)
            let page = try await harness.send(
                .post, "object/list/attachments", as: .member, json: #"{"prefix":"\#(base)","limit":1,"offset":1}"#)
            #expect(page.array.count == 1)

            // The attachment record follows its file and goes with it.
            try await harness.database.withOwnerConnection { connection in
                try await connection.run(
                    """
                    insert into public.attachments (organization_id, entity_type, entity_id, file_name, file_size, mime_type, file_path, uploaded_by_id)
                    values (\(harness.fixture.id("orgA")), 'task', \(harness.fixture.id("taskA")), 'linked.pdf', 5, 'application/pdf', \(base + "/a.pdf"), \(harness.fixture.id("member")))
                    """, logger: harness.database.logger)
            }
            let moved = try await harness.send(
                .post, "object/move", as: .member,
                json: #"{"bucketId":"attachments","sourceKey":"\#(base)/a.pdf","destinationKey":"\#(base)/renamed.pdf"}"#)
            #expect(moved.status == .ok, "\(moved.text)")
            #expect(
                try await harness.ownerValue("select file_path from public.attachments where file_name = 'linked.pdf'", as: String.self)
                    == base
                    + "/renamed.pdf")
            // Moving it out of the organization's folder is refused (the record would point elsewhere).
            let away = try await harness.send(
                .post, "object/move", as: .service,
                json: #"{"bucketId":"attachments","sourceKey":"\#(base)/renamed.pdf","destinationKey":"\#(harness.id("orgB"))/x.pdf"}"#)
            #expect(away.status == .badRequest)
            #expect(
                try await harness.send(
                    .post, "object/move", as: .member,
                    json: #"{"bucketId":"attachments","sourceKey":"\#(base)/none.pdf","destinationKey":"\#(base)/z.pdf"}"#
                ).status == .notFound)
            #expect(
                try await harness.send(
                    .post, "object/move", as: .member,
                    json: #"{"bucketId":"attachments","sourceKey":"\#(base)/b.pdf","destinationKey":"\#(base)/renamed.pdf"}"#
                ).status == .conflict)
            // Across buckets, the destination's rules apply: a PDF is no avatar.
            let crossBucket = try await harness.send(
                .post, "object/move", as: .service,
                json:
                    #"{"bucketId":"attachments","sourceKey":"\#(base)/b.pdf","destinationKey":"\#(harness.id("member"))/b.pdf","destinationBucket":"avatars"}"#
            )
            #expect(crossBucket.status == .unsupportedMediaType)

            let copied = try await harness.send(
                .post, "object/copy", as: .member,
                json: #"{"bucketId":"attachments","sourceKey":"\#(base)/b.pdf","destinationKey":"\#(base)/copy.pdf"}"#)
            #expect(copied.object["Key"] as? String == "attachments/\(base)/copy.pdf")
            #expect(
                String(decoding: try await harness.send(.get, "object/attachments/\(base)/copy.pdf", as: .member).body, as: UTF8.self)
                    == "b.pdf")
            #expect(
                try await harness.send(
                    .post, "object/copy", as: .outsider,
                    json: #"{"bucketId":"attachments","sourceKey":"\#(base)/b.pdf","destinationKey":"\#(base)/stolen.pdf"}"#
                ).status == .notFound)

            let removed = try await harness.send(.delete, "object/attachments/\(base)/renamed.pdf", as: .member)
            #expect(removed.status == .ok)
            #expect(
                try await harness.ownerValue("select count(*)::int from public.attachments where file_name = 'linked.pdf'", as: Int.self)
                    == 0)

            // Emptying the bucket deletes the bytes too.
            #expect(try await harness.send(.post, "bucket/attachments/empty").status == .ok)
            #expect(try await eventually { try await harness.files(in: "blobs").isEmpty })
        }
    }

    @Test(arguments: StorageBackendKind.allCases) func interruptedUploadsAndCrashesLeaveNothing(backend: StorageBackendKind) async throws {
        try await StorageHarness.run(backend: backend) { harness in
            let key = "\(harness.id("orgA"))/task/\(harness.id("taskA"))/interrupted.pdf"
            var request = ByteBuffer()
            request.writeString(
                "POST /storage/v1/object/attachments/\(key) HTTP/1.1\r\nHost: x\r\napikey: \(harness.anonKey)\r\n"
                    + "Authorization: Bearer \(harness.tokens[.member]!)\r\nContent-Type: application/pdf\r\nContent-Length: 4000000\r\n\r\n"
            )
            request.writeBytes(Array(repeating: 7, count: 1_000_000))
            try await harness.sendAndHangUp(request)
            #expect(try await eventually { try await harness.files(in: "staging").isEmpty })
            #expect(try await harness.ownerValue("select count(*)::int from storage.objects where name = '\(key)'", as: Int.self) == 0)
            #expect(try await harness.files(in: "blobs").isEmpty)

            // What a crash leaves behind (bytes published without a row, a staged part) the sweep removes; live blobs stay.
            #expect(try await harness.upload("attachments", key, Array("kept".utf8), type: "application/pdf", as: .member).status == .ok)
            let blobs = harness.services.storage.blobs
            let orphan = try await blobs.stage(
                AsyncStream {
                    $0.yield(ByteBuffer(string: "orphan"))
                    $0.finish()
                }, limit: nil)
            try await blobs.publish(orphan)
            _ = try await blobs.stage(
                AsyncStream {
                    $0.yield(ByteBuffer(string: "half"))
                    $0.finish()
                }, limit: nil)
            let leftovers: Int
            if let s3 = harness.s3 {
                // In S3 a staged body is an object already; a crash mid-body leaves an open multipart upload.
                let upload = try await s3.createMultipartUpload("blobs/\(UUID().uuidString.lowercased())")
                _ = try await s3.uploadPart("blobs/x", uploadID: upload, number: 1, body: ByteBuffer(string: "part")).isEmpty
                #expect(try await harness.files(in: "blobs").count == 3)
                #expect(try await harness.files(in: "staging").count == 1)
                leftovers = 3
            } else {
                #expect(try await harness.files(in: "blobs").count == 2)
                leftovers = 2
            }
            #expect(try await harness.services.storage.sweep(modifiedBefore: Date(timeIntervalSinceNow: 5)) == leftovers)
            #expect(try await harness.files(in: "staging").isEmpty)
            #expect(try await harness.files(in: "blobs").count == 1)
            #expect(String(decoding: try await harness.send(.get, "object/attachments/\(key)", as: .member).body, as: UTF8.self) == "kept")
        }
    }

    @Test(arguments: StorageBackendKind.allCases) func bytesARunningBackupMayNeedOutliveTheirRowsUntilItEnds(backend: StorageBackendKind)
        async throws
    {
        try await StorageHarness.run(backend: backend) { harness in
            let key = "\(harness.id("orgA"))/task/\(harness.id("taskA"))/held.pdf"
            #expect(try await harness.upload("attachments", key, Array("held".utf8), type: "application/pdf", as: .member).status == .ok)
            #expect(try await harness.files(in: "blobs").count == 1)
            try await harness.database.withOwnerConnection { connection in
                // What `strive backup` holds while its snapshot is open.
                _ = try await connection.query("select pg_advisory_lock(\(BackupLock.key))", logger: harness.database.logger).collect()
                #expect(try await harness.send(.delete, "object/attachments/\(key)", as: .member).status == .ok)
                #expect(try await harness.files(in: "blobs").count == 1, "released bytes wait for the backup")
                #expect(try await harness.services.storage.sweep(modifiedBefore: Date(timeIntervalSinceNow: 5)) == 0)
                #expect(try await harness.files(in: "blobs").count == 1, "the orphan sweep waits too")
                _ = try await connection.query("select pg_advisory_unlock(\(BackupLock.key))", logger: harness.database.logger).collect()
            }
            await harness.services.storage.collectGarbage()
            #expect(try await harness.files(in: "blobs").isEmpty, "and go once it has ended")
        }
    }

    /// curl sends `Expect: 100-continue` with bodies over 1 MiB and waits (1 s) for the interim answer first.
    @Test(arguments: StorageBackendKind.allCases) func anUploadThatExpectsContinueIsToldToGoOnBeforeItSendsTheBody(
        backend: StorageBackendKind
    ) async throws {
        try await StorageHarness.run(backend: backend) { harness in
            let port = try #require(harness.client.port)
            let received = NIOLockedValueBox(ByteBuffer())
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelInitializer { channel in channel.pipeline.addHandler(LockedCollector(received: received)) }
                .connect(host: "127.0.0.1", port: port).get()
            let key = "\(harness.id("orgA"))/task/\(harness.id("taskA"))/expect.pdf"
            try await channel.writeAndFlush(
                ByteBuffer(
                    string: "POST /storage/v1/object/attachments/\(key) HTTP/1.1\r\nHost: x\r\napikey: \(harness.anonKey)\r\n"
                        + "Authorization: Bearer \(harness.tokens[.member]!)\r\nContent-Type: application/pdf\r\nContent-Length: 6\r\n"
                        + "Expect: 100-continue\r\nConnection: close\r\n\r\n")
            ).get()
            let interim = try await eventually(5) { received.withLockedValue { String(buffer: $0) }.hasPrefix("HTTP/1.1 100 Continue\r\n") }
            #expect(interim, "the interim answer comes before the body: \(received.withLockedValue { String(buffer: $0) })")
            try await channel.writeAndFlush(ByteBuffer(string: "%PDF-1")).get()
            try await channel.closeFuture.get()
            let answer = received.withLockedValue { String(buffer: $0) }
            #expect(answer.contains("\r\n\r\nHTTP/1.1 200 OK\r\n"), "\(answer)")
            #expect(
                String(decoding: try await harness.send(.get, "object/attachments/\(key)", as: .member).body, as: UTF8.self) == "%PDF-1")
        }
    }
}

final class LockedCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let received: NIOLockedValueBox<ByteBuffer>

    init(received: NIOLockedValueBox<ByteBuffer>) { self.received = received }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        _ = received.withLockedValue { $0.writeBuffer(&buffer) }
    }
}
