import Foundation
import Testing

@testable import StriveDatabase

/// The product-less baseline is assembled from line ranges of landed migrations.
@Suite("Platform baseline manifest")
struct BaselineManifestTests {
    func folder(_ files: [String: String]) throws -> URL {
        let root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("strive-baseline-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("Baseline"), withIntermediateDirectories: true)
        for (name, text) in files { try Data(text.utf8).write(to: root.appendingPathComponent(name)) }
        return root
    }

    @Test func theManifestsEntriesAreAssembledInItsOrder() throws {
        let root = try folder([
            "0001_a.sql": "one\ntwo\nthree\n", "Baseline/extra.sql": "extra\n",
            "Baseline/platform_baseline.manifest": "# comment\n0001_a.sql 2-3\n\nBaseline/extra.sql\n0001_a.sql 1-1\n",
        ])
        defer { try? FileManager.default.removeItem(at: root) }
        let baseline = try Migration.baseline(in: root)
        #expect(baseline.version == 26 && baseline.name == Migration.baselineName)
        let body = baseline.sql.split(separator: "\n").filter { !$0.hasPrefix("--") && !$0.isEmpty }
        #expect(body == ["two", "three", "extra", "one"])
    }

    @Test(arguments: ["0001_a.sql 2-9", "0001_a.sql 3-2", "0001_a.sql x", "0002_missing.sql"])
    func aRangeOutsideItsFileOrAMissingFileIsRefused(_ entry: String) throws {
        let root = try folder(["0001_a.sql": "one\ntwo\nthree\n", "Baseline/platform_baseline.manifest": entry + "\n"])
        defer { try? FileManager.default.removeItem(at: root) }
        #expect(throws: MigrationError.self) { try Migration.baseline(in: root) }
    }

    @Test func theShippedBaselineCarriesNoProductObject() throws {
        let baseline = try #require(try Migration.bundled(product: .none).first)
        #expect(baseline.name == Migration.baselineName)
        for product in ["public.", "app.is_org_member", "app.my_org_ids", "'attachments'", "create_profile"] {
            #expect(!baseline.sql.contains(product), "the platform baseline mentions \(product)")
        }
    }
}
