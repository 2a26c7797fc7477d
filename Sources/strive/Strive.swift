import ArgumentParser

struct Strive: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strive",
        abstract: "The Strive backend: auth, data API, storage and realtime over PostgreSQL, in one binary.",
        discussion: """
            Start here:  strive serve
            With no DATABASE_URL, Strive creates and runs its own PostgreSQL
            cluster in ./.strive (STRIVE_DATA_DIR) and stops it on exit. Set
            DATABASE_URL to use an existing server instead. Every setting is an
            environment variable; `strive serve --help` lists them.
            """,
        version: StriveVersionText.full,
        subcommands: [
            Serve.self, Migrate.self, Verify.self, MigrationCommand.self, Generate.self, Seed.self, DatabaseCommand.self,
            BackupCommand.self, KeysCommand.self,
            RestoreCommand.self, Check.self, Bench.self,
            Version.self,
        ]
    )
}
