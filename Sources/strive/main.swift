import ArgumentParser
import NIOCore
import NIOPosix

// Swift concurrency's jobs run on NIO's event loops rather than on a pool of their own: a request hops
// between the HTTP connection, its handler and its PostgreSQL connection on the same few threads instead
// of waking another thread at every step (on two cores, those wake-ups cost more than the work). Blocking
// work (bcrypt) already runs on NIO's thread pool, off the loops. Installed before anything else runs.
NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()

/// AsyncParsableCommand's entry point (top-level code would pick ParsableCommand's synchronous one).
func runAsync<Command: AsyncParsableCommand>(_ command: Command.Type) async {
    await command.main(nil)
}
await runAsync(Strive.self)
