import Foundation
import StriveCore
import StriveTestSupport
import Testing

/// Three `strive serve` processes behind no load balancer but the test: one database (the first runs it,
/// the others reach it through DATABASE_URL), one S3 bucket (moto), one JWT secret — the deployment shape
/// of docs/SCALING.md. Whatever a client does through one instance, the others see.
// One at a time: each test runs two or three `strive serve` processes, and the suite runs beside every other suite.
@Suite("Three instances on one database and one S3 bucket", .capacityBound, .serialized)
struct MultiInstanceTests {
    struct Instance {
        let process: StriveProcess.Running
        let base: String
    }

    static let password = "strive-demo-password"

    func signIn(_ base: String, _ email: String, anon: String) async throws -> (status: Int, token: String?) {
        let (status, data) = try await httpRequest(
            "POST", base + "/auth/v1/token?grant_type=password", headers: ["apikey": anon, "content-type": "application/json"],
            body: Data(#"{"email":"\#(email)","password":"\#(Self.password)"}"#.utf8))
        let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        return (status, object?["access_token"] as? String)
    }

    @Test func threeInstancesShareObjectsChangesPresenceLimitsAndSchema() async throws {
        let s3 = try await TestS3Server.shared()
        let bucket = TestS3Server.bucketName("multi")
        try await s3.createBucket(bucket)
        let directories = (0..<3).map { temporaryPath("strive-multi-\($0)") }
        defer { for directory in directories { try? FileManager.default.removeItem(atPath: directory) } }
        // Sign-ins per IP are counted in PostgreSQL: 10 for the three together.
        let shared = s3.environment(bucket: bucket).merging(["STRIVE_AUTH_RATE_LIMIT_IP": "10"]) { $1 }

        let first = try StriveProcess.start(
            ["serve", "--data-dir", directories[0], "--port", "0"], environment: shared.merging(["STRIVE_INSTANCE_ID": "a"]) { $1 })
        let a = Instance(process: first, base: try await first.waitUntilReady())
        let anon = try first.anonKey()
        let url = try await StriveProcess.run(["db", "url", "--data-dir", directories[0]]).stdout.trimmingCharacters(
            in: .whitespacesAndNewlines)
        let secret = try String(contentsOfFile: directories[0] + "/jwt-secret", encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines)
        var others: [Instance] = []
        for (index, name) in ["b", "c"].enumerated() {
            let process = try StriveProcess.start(
                ["serve", "--data-dir", directories[index + 1], "--port", "0"],
                environment: shared.merging(["DATABASE_URL": url, "STRIVE_JWT_SECRET": secret, "STRIVE_INSTANCE_ID": name]) { $1 })
            others.append(Instance(process: process, base: try await process.waitUntilReady()))
        }
        let (b, c) = (others[0], others[1])
        let all = [a, b, c]
        defer { for instance in all { instance.process.signal(SIGKILL) } }

        let seed = try await StriveProcess.run(["seed", "--data-dir", directories[0]])
        #expect(seed.status == 0, "\(seed.stderr)")
        func login(_ role: String) throws -> String {
            try #require(
                seed.stdout.split(separator: "\n").first { $0.contains(" \(role) ") }?.split(separator: " ").first.map(String.init),
                "\(seed.stdout)")
        }
        let member = try await signIn(a.base, try login("MEMBER"), anon: anon)
        let memberToken = try #require(member.token)
        let ownerToken = try #require(try await signIn(b.base, try login("OWNER"), anon: anon).token)
        @Sendable func headers(_ token: String) -> [String: String] {
            ["apikey": anon, "Authorization": "Bearer \(token)", "content-type": "application/json"]
        }

        // An upload through A downloads through B and C, byte for byte.
        let user = try #require(
            try JSONSerialization.jsonObject(with: try await httpRequest("GET", a.base + "/auth/v1/user", headers: headers(memberToken)).1)
                as? [String: Any])
        let userID = try #require(user["id"] as? String)
        let bytes = Data((0..<70_000).map { UInt8(truncatingIfNeeded: $0 * 7) })
        var uploadHeaders = headers(memberToken)
        uploadHeaders["content-type"] = "image/png"
        let uploaded = try await httpRequest(
            "POST", a.base + "/storage/v1/object/avatars/\(userID)/face.png", headers: uploadHeaders, body: bytes)
        #expect(uploaded.0 == 200, "\(String(decoding: uploaded.1, as: UTF8.self))")
        for instance in [b, c] {
            let downloaded = try await httpRequest(
                "GET", instance.base + "/storage/v1/object/authenticated/avatars/\(userID)/face.png", headers: headers(memberToken))
            #expect(downloaded.0 == 200)
            #expect(downloaded.1 == bytes, "through \(instance.base)")
        }

        // A schema change reaches all three data APIs.
        _ = try await psql(url, "create table public.multi_probe (id int primary key); grant select on public.multi_probe to anon;")
        for instance in all {
            var status = 0
            for _ in 0..<250 where status != 200 {
                status = try await httpGet(instance.base + "/rest/v1/multi_probe", headers: ["apikey": anon]).0
                if status != 200 { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(status == 200, "\(instance.base) sees the new table")
        }

        // A change written through B is delivered once to a socket on A and once to a socket on C; broadcast and
        // presence cross instances; a killed instance's presences disappear and the rest carry on.
        let organizations = try await httpRequest("GET", b.base + "/rest/v1/organizations?select=id", headers: headers(memberToken))
        let organization = try #require(
            (try JSONSerialization.jsonObject(with: organizations.1) as? [[String: Any]])?.first?["id"] as? String)
        try await TestSocket.connect(url: TestSocket.realtimeURL(base: a.base, apikey: anon)) { onA in
            try await TestSocket.connect(url: TestSocket.realtimeURL(base: c.base, apikey: anon)) { onC in
                let config = changesConfig([("INSERT", "customers", nil)])
                #expect(try await onA.join("crm", config: config, token: memberToken).status == "ok")
                #expect(try await onC.join("crm", config: config, token: ownerToken).status == "ok")
                let created = try await httpRequest(
                    "POST", b.base + "/rest/v1/customers", headers: headers(memberToken),
                    body: Data(#"{"organization_id":"\#(organization)","name":"Written through B"}"#.utf8))
                #expect(created.0 == 201, "\(String(decoding: created.1, as: UTF8.self))")
                for socket in [onA, onC] {
                    #expect(await socket.waitForChanges("crm", count: 1).map { $0.record["name"] } == ["Written through B"])
                }
                try await Task.sleep(for: .milliseconds(500))
                #expect(await onA.changes("crm").count == 1)
                #expect(await onC.changes("crm").count == 1)

                let room: JSONValue = ["broadcast": ["self": false, "ack": true], "presence": ["key": "on-c"]]
                #expect(
                    try await onA.join("room", config: ["broadcast": ["self": false], "presence": ["key": "on-a"]], token: memberToken)
                        .status == "ok")
                #expect(try await onC.join("room", config: room, token: ownerToken).status == "ok")
                await onC.push(
                    topic: "realtime:room", event: "presence", payload: ["type": "presence", "event": "track", "payload": ["at": "c"]])
                #expect(
                    await onA.first { $0.event == "presence_diff" && $0.payload.objectValue?["joins"]?.objectValue?["on-c"] != nil } != nil,
                    "A sees who is on C")
                let ref = await onC.push(
                    topic: "realtime:room", event: "broadcast", payload: ["type": "broadcast", "event": "wave", "payload": ["from": "c"]])
                #expect(try await onC.reply(to: ref).status == "ok")
                #expect(await onA.first { $0.event == "broadcast" && $0.payload.objectValue?["event"] == "wave" } != nil)

                // kill -9 of C: its presences leave A's view once C's heartbeats stop; A and B carry on.
                c.process.signal(SIGKILL)
                #expect(
                    await onA.first(timeout: .seconds(30)) {
                        $0.event == "presence_diff" && $0.payload.objectValue?["leaves"]?.objectValue?["on-c"] != nil
                    } != nil, "C's presence leaves")
                let after = try await httpRequest(
                    "POST", b.base + "/rest/v1/customers", headers: headers(memberToken),
                    body: Data(#"{"organization_id":"\#(organization)","name":"After C died"}"#.utf8))
                #expect(after.0 == 201)
                #expect(await onA.waitForChanges("crm", count: 2).last?.record["name"] == "After C died")
                #expect(try await httpGet(a.base + "/ready").0 == 200)
            }
        }

        // Sign-in attempts are counted across instances: 10 per IP in all, two used above.
        var statuses: [Int] = []
        for attempt in 0..<12 {
            let instance = [a, b][attempt % 2]
            statuses.append(try await signIn(instance.base, "nobody-\(attempt)@example.com", anon: anon).status)
        }
        #expect(statuses.prefix(8).allSatisfy { $0 == 400 }, "\(statuses)")
        #expect(statuses.dropFirst(8).allSatisfy { $0 == 429 }, "\(statuses)")

        for instance in [a, b] {
            instance.process.signal(SIGTERM)
            #expect(try await instance.process.wait().status == 0)
        }
    }

    /// A bucket that does not exist stops the start with a configuration error.
    @Test func aMissingBucketStopsTheStart() async throws {
        let s3 = try await TestS3Server.shared()
        let directory = temporaryPath("strive-no-bucket")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let environment = s3.environment(bucket: TestS3Server.bucketName("missing"))
        let serve = try await StriveProcess.run(["serve", "--data-dir", directory, "--port", "0"], environment: environment)
        #expect(serve.status == 78)
        #expect(serve.stderr.contains("the object store cannot be used"), "\(serve.stderr)")
        #expect(serve.stderr.contains("does not exist"), "\(serve.stderr)")
        #expect(!serve.stderr.contains(TestS3Server.secretAccessKey))
    }

    /// With the S3 store a backup carries the bucket's objects like the local store's, and a restore puts
    /// them into an empty bucket (a bucket that holds objects is refused, as a non-empty directory is).
    @Test func backupsCarryTheBucketsObjectsAndRestoreIntoAnEmptyBucket() async throws {
        let s3 = try await TestS3Server.shared()
        let (sourceBucket, targetBucket) = (TestS3Server.bucketName("source"), TestS3Server.bucketName("target"))
        try await s3.createBucket(sourceBucket)
        try await s3.createBucket(targetBucket)
        let (source, restored) = (temporaryPath("strive-s3-backup"), temporaryPath("strive-s3-restored"))
        let archive = temporaryPath("strive-s3-backup") + ".tar"
        defer { for path in [source, restored, archive] { try? FileManager.default.removeItem(atPath: path) } }

        let server = try StriveProcess.start(
            ["serve", "--data-dir", source, "--port", "0"], environment: s3.environment(bucket: sourceBucket, partSizeMiB: 5))
        let base = try await server.waitUntilReady()
        let service = try server.serviceKey()
        let auth = ["apikey": service, "Authorization": "Bearer \(service)"]
        var uploaded: [String: Data] = [:]
        // One object over the part size, so both the backup's download and the restore's upload go in parts.
        for (index, size) in [10, 6 << 20 + 7].enumerated() {
            let bytes = Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ index) })
            let name = "s3-backup/object-\(index).bin"
            let (status, body) = try await httpRequest(
                "POST", "\(base)/storage/v1/object/public-assets/\(name)", headers: auth.merging(["Content-Type": "image/png"]) { $1 },
                body: bytes)
            #expect(status == 200, "\(String(decoding: body, as: UTF8.self))")
            uploaded[name] = bytes
        }
        let backup = try await StriveProcess.run(
            ["backup", "--data-dir", source, "--output", archive], environment: s3.environment(bucket: sourceBucket), timeout: .seconds(120)
        )
        #expect(backup.status == 0, "\(backup.stderr)")
        #expect(backup.stdout.contains("2 objects"), "\(backup.stdout)")
        server.signal(SIGTERM)
        _ = try await server.wait()

        let occupied = try await StriveProcess.run(
            ["restore", "--data-dir", restored, archive], environment: s3.environment(bucket: sourceBucket), timeout: .seconds(120))
        #expect(occupied.status == 73 && occupied.stderr.contains("already holds objects"), "\(occupied.stderr)")
        #expect(!FileManager.default.fileExists(atPath: restored + "/pg"), "a refused restore leaves no cluster behind")

        let restore = try await StriveProcess.run(
            ["restore", "--data-dir", restored, archive], environment: s3.environment(bucket: targetBucket), timeout: .seconds(120))
        #expect(restore.status == 0, "\(restore.stderr)")
        let again = try StriveProcess.start(
            ["serve", "--data-dir", restored, "--port", "0"], environment: s3.environment(bucket: targetBucket))
        let restoredBase = try await again.waitUntilReady()
        for (name, bytes) in uploaded {
            let (status, body) = try await httpRequest("GET", "\(restoredBase)/storage/v1/object/public-assets/\(name)", headers: auth)
            #expect(status == 200 && body == bytes, "\(name): \(status), \(body.count) bytes")
        }
        again.signal(SIGTERM)
        #expect(try await again.wait().status == 0)
    }
}
