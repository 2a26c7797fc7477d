import Foundation
import StriveCore
import Testing

@Suite("Settings declared once")
struct SettingsTests {
    static let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../README.md").standardized

    @Test func readmeTableIsTheDeclarations() throws {
        let text = try String(contentsOf: Self.readme, encoding: .utf8)
        let begin = try #require(text.range(of: "<!-- settings:begin -->\n"), "README.md has no settings:begin marker")
        let end = try #require(text.range(of: "\n<!-- settings:end -->"), "README.md has no settings:end marker")
        let table = String(text[begin.upperBound..<end.lowerBound])
        #expect(
            table == ConfigVariable.markdownTable(),
            "README.md's settings table differs from the declarations in Settings.swift; replace it with:\n\(ConfigVariable.markdownTable())"
        )
    }

    @Test(arguments: ConfigVariable.allCases)
    func everyVariableIsInTheHelp(_ variable: ConfigVariable) {
        #expect(ConfigVariable.helpText().contains(variable.rawValue))
    }

    @Test(arguments: ConfigVariable.allCases.filter { $0.setting.defaultInteger != nil })
    func integerSettingsRefuseValuesOutsideTheirDeclaredRange(_ variable: ConfigVariable) async throws {
        guard case .integer(let range, _, .some(let declared)) = variable.setting.kind else { return }
        #expect(range.contains(declared))
        // A value just outside the range is refused with the declared bounds in the rule.
        let loader = ConfigLoader(environment: [variable.rawValue: String(range.upperBound + 1)], workingDirectory: "/srv/app")
        let error = await #expect(throws: ConfigurationError.self) {
            _ = try await loader.load(developmentSecret: { _ in ConfigLoaderTests.strongSecret })
        }
        #expect(error?.problems.map(\.variable) == [variable.rawValue])
        #expect(error?.problems.first?.rule.contains("\(range.upperBound)") == true)
    }

    @Test func commandLogLevelRefusesAnUnknownLevel() throws {
        #expect(try ConfigLoader(environment: [:]).loadCommandLogLevel() == .warning)
        #expect(try ConfigLoader(environment: ["STRIVE_LOG_LEVEL": "DEBUG"]).loadCommandLogLevel() == .debug)
        let error = #expect(throws: ConfigurationError.self) {
            try ConfigLoader(environment: ["STRIVE_LOG_LEVEL": "loud"]).loadCommandLogLevel()
        }
        #expect(error?.problems.first?.variable == "STRIVE_LOG_LEVEL")
    }

    @Test func clusterSettingsAreValidatedWithTheRest() throws {
        let error = #expect(throws: ConfigurationError.self) {
            try ConfigLoader(environment: ["STRIVE_PG_USER": "no body", "STRIVE_PG_BIN_DIR": "/nonexistent/bin"]).loadDatabaseSettings()
        }
        #expect(error?.problems.map(\.variable) == ["STRIVE_PG_USER", "STRIVE_PG_BIN_DIR"])
        let settings = try ConfigLoader(environment: ["STRIVE_DATA_DIR": "data"], workingDirectory: "/srv/app").loadDatabaseSettings()
        #expect(
            settings
                == DatabaseSettings(
                    dataDirectory: "/srv/app/data", location: .managed, postgresUser: "postgres", postgresBinDirectory: nil,
                    migrationsDirectory: "/srv/app/migrations")
        )
    }
}
