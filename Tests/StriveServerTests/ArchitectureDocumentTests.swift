import Foundation
import Logging
import StriveDatabase
import StriveServer
import StriveTestSupport
import Testing

/// docs/ARCHITECTURE.md is how a newcomer learns the code; these keep it from drifting from it.
@Suite("Architecture document")
struct ArchitectureDocumentTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func text(_ path: String) throws -> String {
        try String(contentsOf: repository.appendingPathComponent(path), encoding: .utf8)
    }

    /// The names of the package's targets that are not tests, as Package.swift declares them.
    static func sourceTargets() throws -> [String] {
        let manifest = try text("Package.swift")
        let declaration = try Regex(#"\.(?:target|executableTarget)\(\s*name:\s*"([^"]+)""#)
        return manifest.matches(of: declaration).compactMap { $0.output[1].substring.map(String.init) }
    }

    @Test func everySourceTargetHasItsParagraph() throws {
        let document = try Self.text("docs/ARCHITECTURE.md")
        let targets = try Self.sourceTargets()
        #expect(targets.count >= 15, "Package.swift's targets were not found: \(targets)")
        for target in targets {
            #expect(document.contains("**\(target)** (`Sources/\(target)`)"), "docs/ARCHITECTURE.md has no paragraph for \(target)")
        }
    }

    @Test func everyModuleUsesOnlyModulesDescribedBelowIt() throws {
        let document = try Self.text("docs/ARCHITECTURE.md")
        let manifest = try Self.text("Package.swift")
        let declaration = try Regex(#"\.(?:target|executableTarget)\(\s*name:\s*"([^"]+)",\s*dependencies:\s*\[([^\]]*)\]"#)
        let product = try Regex(#"\.product\([^)]*\)"#)
        let quoted = try Regex(#""(\w+)""#)
        func position(_ target: String) -> String.Index? { document.range(of: "**\(target)** (`Sources/\(target)`)")?.lowerBound }
        var checked = 0
        for match in manifest.matches(of: declaration) {
            guard let target = match.output[1].substring.map(String.init), let list = match.output[2].substring else { continue }
            let dependencies = String(list).replacing(product, with: "").matches(of: quoted).compactMap {
                $0.output[1].substring.map(String.init)
            }
            for dependency in dependencies {
                let (user, used) = (try #require(position(target)), try #require(position(dependency)))
                #expect(used > user, "\(target) uses \(dependency), which docs/ARCHITECTURE.md describes above it")
                checked += 1
            }
        }
        #expect(checked > 30, "Package.swift's module dependencies were not found")
    }

    @Test func theStatedMiddlewareOrderIsTheRouters() async throws {
        let document = try Self.text("docs/ARCHITECTURE.md")
        let line = try #require(
            document.split(separator: "\n").first { $0.hasPrefix("Middleware, outermost first:") },
            "docs/ARCHITECTURE.md states no line \"Middleware, outermost first: …\"")
        let stated = line.matches(of: try Regex(#"`(\w+)`"#)).compactMap { $0.output[1].substring.map(String.init) }
        let database = try await TestCluster.shared.makeDatabase()
        try await database.withDatabase { db in
            var logger = Logger(label: "test.architecture")
            logger.logLevel = .critical
            let services = try await StriveApplication.Services.make(
                config: try await TestServer.config(), database: db, migrator: try Migrator(migrations: try Migration.bundled()),
                logger: logger)
            #expect(stated == StriveApplication.middlewareNames(services))
        }
    }
}

/// Identity is the scope's decision (`CallerScope`, `GrantScope`): route files never choose the service
/// role for a handler, and never read the caller's raw resolution.
@Suite("Route scopes")
struct RouteScopeTests {
    static func routeFiles() throws -> [(name: String, text: String)] {
        let sources = ArchitectureDocumentTests.repository.appendingPathComponent("Sources")
        let paths = FileManager.default.enumerator(atPath: sources.path)?.compactMap { $0 as? String } ?? []
        return try paths.filter { $0.hasSuffix("Routes.swift") }.map { path in
            (path, try String(contentsOf: sources.appendingPathComponent(path), encoding: .utf8))
        }
    }

    @Test func theServiceRoleIsOnlyEverAGrantAScopeMakes() throws {
        let files = try Self.routeFiles()
        #expect(files.count >= 8, "no route files found")
        for (name, text) in files {
            for line in text.split(separator: "\n") where line.contains(".serviceRole(") {
                #expect(line.contains("Grant(identity: .serviceRole("), "\(name) picks the service role outside a scope: \(line)")
            }
        }
    }

    @Test func routesReadOnlyWhatTheirScopeVerified() throws {
        for (name, text) in try Self.routeFiles() {
            #expect(!text.contains("callerResolution"), "\(name) reads the raw caller resolution instead of its scope's identity")
        }
    }
}
