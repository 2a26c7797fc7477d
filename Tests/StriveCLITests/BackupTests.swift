import Crypto
import Foundation
import StriveTestSupport
import Synchronization
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `strive backup` while `strive serve` runs and writes go on, then `strive restore` into an empty data
/// directory: the same rows and the same object bytes; damaged archives and occupied targets refused.
@Suite("Backup and restore", .capacityBound)
struct BackupTests {
    /// Tables whose every row must come back identically (a digest of their rows as text, in order).
    /// realtime's capture and auth's unlogged rate limits change on their own and are left out.
    static let tableDigests = """
        select string_agg(format('%s %s', t.name, t.digest), E'\\n' order by t.name) from (
          select format('%I.%I', schemaname, tablename) as name,
                 (xpath('/row/d/text()', query_to_xml(format(
                    'select md5(coalesce(string_agg(r::text, ''|'' order by r::text), '''')) as d from %I.%I r',
                    schemaname, tablename), false, true, '')))[1]::text as digest
          from pg_tables
          where schemaname in ('public', 'auth', 'storage', 'app', 'strive_meta')
            and tablename not in ('backup_probe', 'rate_limits')
        ) t
        """

    @Test func aBackupTakenWhileServingRestoresTheSameRowsAndBytes() async throws {
        let source = temporaryPath("strive-backup-source")
        let restored = temporaryPath("strive-backup-restored")
        let archive = temporaryPath("strive-backup") + ".tar"
        defer {
            for path in [source, restored, archive] { try? FileManager.default.removeItem(atPath: path) }
        }
        let server = try StriveProcess.start(["serve", "--data-dir", source, "--port", "0"])
        let base = try await server.waitUntilReady()
        let service = try server.serviceKey()
        let auth = ["apikey": service, "Authorization": "Bearer \(service)"]
        #expect(try await StriveProcess.run(["seed", "--data-dir", source]).status == 0)
        let url = try await StriveProcess.run(["db", "url", "--data-dir", source]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try await psql(
            url,
            """
            create table public.backup_probe (id bigint generated always as identity primary key, note text not null);
            alter table public.backup_probe enable row level security;
            grant select, insert on public.backup_probe to service_role;
            """)

        // Objects of a few sizes, one of them deleted after the backup: the archive must still have it.
        var uploaded: [String: String] = [:]
        for (index, size) in [12, 100 * 1024, 1 << 20].enumerated() {
            var bytes = Data((0..<size).map { _ in UInt8.random(in: 0...255) })
            bytes.replaceSubrange(0..<min(size, 12), with: Data("strive-obj-\(index)".utf8.prefix(12)))
            let name = "backup/object-\(index).png"
            let (status, body) = try await httpRequest(
                "POST", "\(base)/storage/v1/object/public-assets/\(name)", headers: auth.merging(["Content-Type": "image/png"]) { $1 },
                body: bytes)
            #expect(status == 200, "\(String(decoding: body, as: UTF8.self))")
            uploaded[name] = Self.sha256(bytes)
        }
        let before = try await psql(url, Self.tableDigests)
        #expect(before.contains("storage.objects ") && before.contains("auth.users "), "\(before)")

        // The backup runs while a writer keeps inserting through the data API.
        let finished = Mutex(false)
        let backup = Task {
            defer { finished.withLock { $0 = true } }
            return try await StriveProcess.run(["backup", "--data-dir", source, "--output", archive], timeout: .seconds(120))
        }
        var written: [Int] = []
        var failedWrites = 0
        repeat {
            let (status, body) = try await httpRequest(
                "POST", "\(base)/rest/v1/backup_probe",
                headers: auth.merging(["Prefer": "return=representation", "Content-Type": "application/json"]) { $1 },
                body: Data(#"{"note":"written during the backup"}"#.utf8))
            if status == 201, let id = (try? JSONSerialization.jsonObject(with: body) as? [[String: Any]])?.first?["id"] as? Int {
                written.append(id)
            } else {
                failedWrites += 1
            }
        } while !finished.withLock { $0 }
        let output = try await backup.value
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout.contains("3 objects"), "\(output.stdout)")
        #expect(failedWrites == 0 && !written.isEmpty, "writes go on during a backup: \(written.count) written, \(failedWrites) failed")
        let (deleted, _) = try await httpRequest("DELETE", "\(base)/storage/v1/object/public-assets/backup/object-0.png", headers: auth)
        #expect(deleted == 200)
        server.signal(SIGTERM)
        _ = try await server.wait()

        // Restore into an empty data directory and serve it.
        let restore = try await StriveProcess.run(["restore", "--data-dir", restored, archive], timeout: .seconds(120))
        #expect(restore.status == 0, "\(restore.stderr)")
        let again = try StriveProcess.start(["serve", "--data-dir", restored, "--port", "0"])
        let restoredBase = try await again.waitUntilReady()
        defer { again.signal(SIGTERM) }
        #expect(try again.serviceKey() == service, "the development secret came back with the data")
        let restoredURL = try await StriveProcess.run(["db", "url", "--data-dir", restored]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try await psql(restoredURL, Self.tableDigests) == before)
        let probe = Set(try await psql(restoredURL, "select id from public.backup_probe").split(separator: "\n").compactMap { Int($0) })
        #expect(probe.isSubset(of: Set(written)), "only rows the source committed")
        for (name, digest) in uploaded {
            let (status, body) = try await httpRequest("GET", "\(restoredBase)/storage/v1/object/public-assets/\(name)", headers: auth)
            #expect(status == 200 && Self.sha256(body) == digest, "\(name): \(status)")
        }

        // The same archive into an empty database given by DATABASE_URL, with a storage directory of its own.
        let external = try await TestCluster.shared.makeDatabase(migrated: false)
        let externalURL = try external.started.cluster.url(port: external.started.running.port, database: external.target.database)
        let externalStorage = temporaryPath("strive-restore-storage")
        defer { try? FileManager.default.removeItem(atPath: externalStorage) }
        let intoDatabase = try await StriveProcess.run(
            ["restore", "--database-url", externalURL, archive], environment: ["STRIVE_STORAGE_DIR": externalStorage],
            timeout: .seconds(120))
        #expect(intoDatabase.status == 0, "\(intoDatabase.stderr)")
        #expect(try await psql(externalURL, Self.tableDigests) == before)
        let blobs = (try? FileManager.default.subpathsOfDirectory(atPath: externalStorage + "/blobs")) ?? []
        #expect(blobs.filter { $0.contains("/") }.count == uploaded.count, "\(blobs)")
        let twice = try await StriveProcess.run(
            ["restore", "--database-url", externalURL, archive], environment: ["STRIVE_STORAGE_DIR": temporaryPath("strive-unused")])
        #expect(twice.status == 73 && twice.stderr.contains("already has Strive's schema"), "\(twice.stderr)")

        // Restoring over data is refused.
        let occupied = try await StriveProcess.run(["restore", "--data-dir", restored, archive])
        #expect(occupied.status == 73 && occupied.stderr.contains("refusing to restore over existing data"), "\(occupied.stderr)")

        // A damaged archive changes nothing: truncated, a flipped byte in an object, or not an archive at all.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: archive))
        var flipped = bytes
        let marker = try #require(flipped.range(of: Data("strive-obj-2".utf8)))
        flipped[marker.upperBound + 100] ^= 0xFF
        let damaged: [(String, Data, String)] = [
            ("truncated", bytes.prefix(bytes.count / 2), "corrupt or incomplete"),
            ("flipped", flipped, "objects/"),
            ("garbage", Data("this is not a tar file".utf8), "corrupt or incomplete"),
        ]
        for (label, data, expected) in damaged {
            let path = archive + ".\(label)"
            try data.write(to: URL(fileURLWithPath: path))
            defer { try? FileManager.default.removeItem(atPath: path) }
            let target = temporaryPath("strive-restore-\(label)")
            let refused = try await StriveProcess.run(["restore", "--data-dir", target, path])
            #expect(refused.status == 65, "\(label): \(refused.stderr)")
            #expect(refused.stderr.contains(expected) && refused.stderr.contains("nothing was restored"), "\(label): \(refused.stderr)")
            #expect(!FileManager.default.fileExists(atPath: target), "\(label): the target was left as it was")
        }
    }

    @Test func scheduledBackupsKeepTheNewestAndManualOnesAreListedToo() async throws {
        let directory = temporaryPath("strive-scheduled")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try StriveProcess.start(
            ["serve", "--data-dir", directory, "--port", "0"],
            environment: ["STRIVE_BACKUP_SCHEDULE": "2s", "STRIVE_BACKUP_RETENTION": "2"])
        _ = try await server.waitUntilReady()
        let manual = try await StriveProcess.run(["backup", "--data-dir", directory])
        #expect(manual.status == 0 && manual.stdout.contains(directory + "/backups/strive-"), "\(manual.stderr)")
        let url = try await StriveProcess.run(["db", "url", "--data-dir", directory]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        var written = 0
        for _ in 0..<120 where written < 4 {
            written =
                Int(
                    try await psql(url, "select count(*) + coalesce(max(id), 0) - count(*) from strive_meta.backups")
                        .trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(written >= 4, "three scheduled backups and the manual one were recorded")
        server.signal(SIGTERM)
        #expect(try await server.wait().status == 0)

        let rows = try await StriveProcess.run(["db", "start", "--data-dir", directory])
        #expect(rows.status == 0)
        let listed = try await psql(
            url, "select scheduled, file from strive_meta.backups where error is null order by started_at"
        ).split(separator: "\n").map { $0.split(separator: "|").map(String.init) }
        _ = try await StriveProcess.run(["db", "stop", "--data-dir", directory])
        #expect(listed.filter { $0.first == "t" }.count == 2, "retention 2: \(listed)")
        #expect(listed.filter { $0.first == "f" }.count == 1, "manual backups are never pruned: \(listed)")
        let archives = try FileManager.default.contentsOfDirectory(atPath: directory + "/backups").filter { $0.hasSuffix(".tar") }
        #expect(Set(archives.map { directory + "/backups/" + $0 }) == Set(listed.compactMap(\.last)), "\(archives) vs \(listed)")
    }

    static func sha256(_ data: Data) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }
}

/// One HTTP request over the loopback; status and body.
func httpRequest(_ method: String, _ url: String, headers: [String: String] = [:], body: Data? = nil) async throws -> (Int, Data) {
    var request = URLRequest(url: try #require(URL(string: url)))
    request.httpMethod = method
    request.httpBody = body
    for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
    let (data, response) = try await URLSession.shared.data(for: request)
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
}
