import Crypto
import Foundation
import NIOCore
import StriveBlobs
import StriveCore
import StriveS3
import StriveStorage
import StriveTestSupport
import Testing

/// The S3 store against a real S3 implementation (moto): what the HTTP suites cannot reach with small
/// objects — multipart uploads, ranges across parts, copies in parts, limits mid-stream, an S3 that went away.
@Suite("S3 blob store against moto")
struct S3BlobStoreTests {
    static let mebibyte = 1 << 20

    /// `count` bytes of a repeating, position-dependent pattern, in chunks as a network would deliver them.
    static func body(_ count: Int, chunk: Int = 64 * 1024) -> AsyncStream<ByteBuffer> {
        AsyncStream { continuation in
            var offset = 0
            while offset < count {
                let length = min(chunk, count - offset)
                continuation.yield(ByteBuffer(bytes: (offset..<offset + length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 12) }))
                offset += length
            }
            continuation.finish()
        }
    }

    static func expected(_ range: Range<Int>) -> [UInt8] {
        range.map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 12) }
    }

    static func contents(_ store: S3BlobStore, _ id: BlobID, range: Range<Int64>? = nil) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        try await store.read(id, range: range) { bytes.append(contentsOf: $0.readableBytesView) }
        return bytes
    }

    func withStore<T>(_ body: (S3BlobStore, S3Client) async throws -> T) async throws -> T {
        let server = try await TestS3Server.shared()
        let bucket = TestS3Server.bucketName("blobs")
        try await server.createBucket(bucket)
        let inspector = server.client(bucket: bucket)
        // Parts of 5 MiB (S3's minimum); anything over 6 MiB is copied in parts, as objects over 5 GiB are.
        let store = S3BlobStore(
            client: server.client(bucket: bucket), partSize: 5 * Self.mebibyte, copyLimit: Int64(6 * Self.mebibyte),
            copyPartSize: Int64(5 * Self.mebibyte), logger: .init(label: "test"))
        do {
            let result = try await body(store, inspector)
            try await store.client.shutdown()
            try await inspector.shutdown()
            return result
        } catch {
            try? await store.client.shutdown()
            try? await inspector.shutdown()
            throw error
        }
    }

    @Test func largeBodiesGoUpInPartsAndComeBackWholeAndInRanges() async throws {
        try await withStore { store, s3 async throws in
            let size = 12 * Self.mebibyte + 123
            let staged = try await store.stage(Self.body(size), limit: nil)
            try await store.publish(staged)
            #expect(staged.size == Int64(size))
            // A multipart object's entity tag ends in its part count: 5 + 5 + 2 MiB.
            let head = try #require(try await s3.headObject("blobs/\(staged.id)"))
            #expect(head.size == Int64(size))
            #expect(head.eTag.hasSuffix("-3\""), "\(head.eTag)")
            #expect(try await s3.listMultipartUploads(prefix: "").isEmpty)

            let whole = try await Self.contents(store, staged.id)
            #expect(SHA256.hash(data: whole) == SHA256.hash(data: Self.expected(0..<size)))
            let boundary = 5 * Self.mebibyte
            let across = try await Self.contents(store, staged.id, range: Int64(boundary - 10)..<Int64(boundary + 10))
            #expect(across == Self.expected(boundary - 10..<boundary + 10))
            #expect(try await Self.contents(store, staged.id, range: Int64(size - 3)..<Int64(size)) == Self.expected(size - 3..<size))
            #expect(try await store.size(of: staged.id) == Int64(size))

            // Over the copy limit: copied part by part on the server, never through Strive.
            let copy = try await store.stageCopy(of: staged.id)
            #expect(copy.size == Int64(size))
            let copied = try await Self.contents(store, copy.id)
            #expect(SHA256.hash(data: copied) == SHA256.hash(data: whole))
            #expect(try #require(try await s3.headObject("blobs/\(copy.id)")).eTag.hasSuffix("-3\""))

            // A small body is one PUT, and a small copy one CopyObject.
            let small = try await store.stage(Self.body(1000), limit: nil)
            let smallCopy = try await store.stageCopy(of: small.id)
            #expect(try await Self.contents(store, smallCopy.id) == Self.expected(0..<1000))
            #expect(try #require(try await s3.headObject("blobs/\(small.id)")).eTag.contains("-") == false)

            for id in [staged.id, copy.id, small.id, smallCopy.id] { try await store.delete(id) }
            #expect(try await s3.listObjects(prefix: "").objects.isEmpty)
            await #expect(throws: BlobStoreError.notFound(staged.id)) { try await store.size(of: staged.id) }
            await #expect(throws: BlobStoreError.notFound(staged.id)) { try await Self.contents(store, staged.id) }
        }
    }

    @Test func aBodyOverTheLimitLeavesNoObjectAndNoOpenUpload() async throws {
        try await withStore { store, s3 async throws in
            // Past the first part already: the multipart upload has begun and must be aborted.
            await #expect(throws: BlobStoreError.tooLarge(limit: Int64(7 * Self.mebibyte))) {
                try await store.stage(Self.body(9 * Self.mebibyte), limit: Int64(7 * Self.mebibyte))
            }
            // Within the first part: nothing was sent at all.
            await #expect(throws: BlobStoreError.tooLarge(limit: 1000)) { try await store.stage(Self.body(4000), limit: 1000) }
            #expect(try await s3.listObjects(prefix: "").objects.isEmpty)
            #expect(try await s3.listMultipartUploads(prefix: "").isEmpty)
        }
    }

    @Test func aRestoredFileIsPlacedUnderItsBlobID() async throws {
        try await withStore { store, s3 async throws in
            #expect(try await store.isEmpty())
            let file = NSTemporaryDirectory() + "strive-restored-" + UUID().uuidString.prefix(8)
            defer { try? FileManager.default.removeItem(atPath: file) }
            #expect(FileManager.default.createFile(atPath: file, contents: Data(Self.expected(0..<1000))))
            let id = BlobID()
            try await store.place(fileAt: file, as: id)
            #expect(try await Self.contents(store, id) == Self.expected(0..<1000))
            #expect(try await s3.listObjects(prefix: "").objects.map(\.key) == ["blobs/\(id)"])
            #expect(try await !store.isEmpty())
        }
    }

    @Test func aBucketThatDoesNotExistIsNamedInTheError() async throws {
        let server = try await TestS3Server.shared()
        let client = server.client(bucket: TestS3Server.bucketName("missing"))
        do {
            _ = try await client.listObjects(prefix: "")
            Issue.record("listing a bucket that does not exist succeeded")
        } catch {
            #expect(error.code == "NoSuchBucket", "\(error)")
        }
        try await client.shutdown()
    }

    @Test func uploadingAFileThatIsNotThereSendsNothing() async throws {
        try await withStore { _, s3 async throws in
            await #expect(throws: CocoaError.self) { try await s3.upload(fileAt: "/no/such/file", to: "blobs/x") }
            #expect(try await s3.listObjects(prefix: "").objects.isEmpty)
        }
    }

    @Test func theSweepAbortsForgottenUploadsAndDeletesOrphansOnly() async throws {
        try await withStore { store, s3 async throws in
            let live = try await store.stage(Self.body(100), limit: nil)
            let orphan = try await store.stage(Self.body(200), limit: nil)
            // Recent objects are left alone: their transaction may not have committed yet.
            #expect(try await store.sweep(modifiedBefore: Date(timeIntervalSinceNow: -60)) { _ in [] } == 0)
            // (Created only now: moto reports every upload as initiated in 2010, so any sweep would take it.)
            let open = try await s3.createMultipartUpload("blobs/\(BlobID())")
            _ = try await s3.uploadPart("blobs/x", uploadID: open, number: 1, body: ByteBuffer(string: "part"))
            let removed = try await store.sweep(modifiedBefore: Date(timeIntervalSinceNow: 5)) { Set($0).intersection([live.id]) }
            #expect(removed == 2)
            #expect(try await s3.listObjects(prefix: "").objects.map(\.key) == ["blobs/\(live.id)"])
            #expect(try await s3.listMultipartUploads(prefix: "").isEmpty)
            _ = orphan
        }
    }

    /// S3 going away is a 503 for the requests that need it, never a row without bytes; the rest works on.
    @Test func anUnreachableStoreAnswers503AndWritesNothing() async throws {
        let server = try await TestS3Server.start()
        defer { server.stop() }
        try await StorageHarness.run(backend: .s3, s3Server: server) { harness in
            let folder = "\(harness.id("orgA"))/task/\(harness.id("taskA"))"
            #expect(
                try await harness.upload("attachments", "\(folder)/before.pdf", Array("bytes".utf8), type: "application/pdf", as: .member)
                    .status == .ok)
            server.stop()
            #expect(!server.isRunning)

            let count = "select count(*)::int from storage.objects where bucket_id = 'attachments'"
            let rowsBefore = try await harness.ownerValue(count, as: Int.self)
            let upload = try await harness.upload(
                "attachments", "\(folder)/after.pdf", Array("bytes".utf8), type: "application/pdf", as: .member)
            #expect(upload.status == .serviceUnavailable)
            #expect(upload.error == "ServiceUnavailable")
            #expect(!String(decoding: upload.body, as: UTF8.self).contains("127.0.0.1"), "the endpoint stays in the log")
            #expect(try await harness.ownerValue(count, as: Int.self) == rowsBefore)

            let download = try await harness.send(.get, "object/attachments/\(folder)/before.pdf", as: .member)
            #expect(download.status == .serviceUnavailable)
            let copy = try await harness.send(
                .post, "object/copy", as: .member,
                json: #"{"bucketId":"attachments","sourceKey":"\#(folder)/before.pdf","destinationKey":"\#(folder)/copy.pdf"}"#)
            #expect(copy.status == .serviceUnavailable)
            #expect(try await harness.ownerValue(count, as: Int.self) == rowsBefore)

            // What needs only the database still answers.
            let listed = try await harness.send(.post, "object/list/attachments", as: .member, json: #"{"prefix":"\#(folder)"}"#)
            #expect(listed.status == .ok)
        }
    }
}
