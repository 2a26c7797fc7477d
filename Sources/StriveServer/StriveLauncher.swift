import Logging
import NIOCore
import ServiceLifecycle
import StriveBackup
import StriveBlobs
import StriveCore
import StriveCron
import StriveDatabase
import StriveOutbound
import StriveStorage

/// `strive serve`: the cluster (when self-managed), migrations, the pools and the HTTP server, run until
/// SIGINT/SIGTERM, then shut down in reverse: HTTP stops, the pools drain, the cluster stops.
public struct StriveLauncher: Sendable {
    public let config: StriveConfig
    public let logger: Logger

    public init(config: StriveConfig, logger: Logger) {
        self.config = config
        self.logger = logger
    }

    /// `onListening` receives the base URL once the server accepts requests. Serving ends gracefully on
    /// SIGTERM/SIGINT, or when `stopWhen` returns (benchmarks and embedders use it).
    public func serve(
        onListening: @escaping @Sendable (String) -> Void = { _ in },
        stopWhen: (@Sendable () async -> Void)? = nil
    ) async throws(StartupError) {
        guard LoopbackPort.isAvailable(config.port, host: config.host) else {
            throw .portInUse(host: config.host, port: config.port)
        }
        let migrator: Migrator
        do {
            migrator = try Migrator.standard(
                projectDirectory: config.databaseSettings.migrationsDirectory, product: config.databaseSettings.productSchema)
        } catch {
            throw .migration(error)
        }

        switch config.database {
        case .external(let url):
            try await run(target: DatabaseTarget(url: url), managed: nil, migrator: migrator, onListening: onListening, stopWhen: stopWhen)
        case .managed:
            let managed = try await ManagedCluster.open(config.databaseSettings, logger: logger)
            do {
                try await run(
                    target: try managed.target(), managed: managed, migrator: migrator, onListening: onListening, stopWhen: stopWhen)
            } catch {
                await managed.close(logger: logger)
                throw error
            }
            await managed.close(logger: logger)
        }
    }

    private func run(
        target: DatabaseTarget, managed: ManagedCluster?, migrator: Migrator, onListening: @escaping @Sendable (String) -> Void,
        stopWhen: (@Sendable () async -> Void)?
    ) async throws(StartupError) {
        let authenticator = DatabaseCredentials.authenticator(derivedFrom: config.jwtSecret)
        try await DatabaseBootstrap.prepare(target, migrator: migrator, authenticator: authenticator, logger: logger)

        let database: Database
        do {
            database = try Database(
                target: target, authenticator: authenticator, requestPoolSize: config.poolSize,
                statementTimeout: config.statementTimeout, acquireTimeout: config.acquireTimeout, logger: logger)
        } catch {
            throw .server("cannot configure the database pools: \(error)")
        }
        let services: StriveApplication.Services
        do {
            services = try await StriveApplication.Services.make(config: config, database: database, migrator: migrator, logger: logger)
        } catch let error as StartupError {
            throw error
        } catch {
            throw .server("cannot set up the services: \(error)")
        }
        let host = config.host
        let app = StriveApplication.make(
            host: config.host, port: config.port, services: services, logger: logger, runsRealtime: false,
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                onListening("http://\(host):\(port)")
            }
        )
        var serviceList: [ServiceGroupConfiguration.ServiceConfiguration] = [
            // Services stop in reverse order: realtime before the HTTP server, so the change feed's last
            // deliveries and its saved position reach the sockets before the server closes them.
            .init(service: database), .init(service: app), .init(service: services.realtime),
            .init(service: SchemaReloadService(schema: services.rest.schema, database: database, logger: logger)),
            .init(service: StorageMaintenanceService(storage: services.storage, logger: logger)),
            .init(service: services.mailDelivery()),
            .init(service: services.httpOutbox()),
            .init(service: CronScheduler(database: database, instance: config.instanceID, timeout: config.cronJobTimeout, logger: logger)),
        ]
        serviceList.append(
            .init(
                service: ShutdownDeadline(
                    grace: .seconds(25), cluster: managed?.ownsCluster == true ? managed?.cluster : nil, logger: logger)))
        if let schedule = try backupSchedule(target: target, managed: managed, blobs: services.storage.blobs) {
            serviceList.append(.init(service: schedule))
        }
        // Only the process that started the cluster restarts it (not one adopting another's).
        if let managed, managed.ownsCluster {
            serviceList.append(
                .init(
                    service: ClusterSupervisor(
                        cluster: managed.cluster, running: managed.running, availability: database.availability, logger: logger)))
        }
        var groupConfiguration = ServiceGroupConfiguration(
            services: serviceList, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        // A graceful shutdown that cannot finish (a request stuck on a server that stopped answering) is
        // turned into cancellation. (No cancellation deadline: ServiceLifecycle turns one into a crash, and
        // its timer can outlive a group that already ended with an error.)
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(15)
        let group = ServiceGroup(configuration: groupConfiguration)
        do {
            try await withThrowingDiscardingTaskGroup { tasks in
                if let stopWhen {
                    tasks.addTask {
                        await stopWhen()
                        await group.triggerGracefulShutdown()
                    }
                }
                try await group.run()
                tasks.cancelAll()
            }
        } catch {
            if let gaveUp = error as? ClusterSupervisor.GaveUp { throw .clusterKeepsStopping(gaveUp) }
            if let io = error as? IOError, io.errnoCode == EADDRINUSE {
                throw .portInUse(host: config.host, port: config.port)
            }
            throw .server(String(describing: error))
        }
        logger.info("stopped serving")
    }

    /// The scheduled backups, when `STRIVE_BACKUP_SCHEDULE` asks for them; pg_dump must be found at start.
    private func backupSchedule(target: DatabaseTarget, managed: ManagedCluster?, blobs: any BlobStore) throws(StartupError)
        -> BackupScheduleService?
    {
        guard config.backup.interval != nil else { return nil }
        var binaries = managed?.cluster.binaries.directory
        if binaries == nil {
            do throws(LocalClusterError) {
                binaries = try PostgresBinaries.locate(in: config.databaseSettings.postgresBinDirectory).directory
            } catch {
                throw .cluster(error)
            }
        }
        let secret: String? = managed == nil ? nil : config.databaseSettings.dataDirectory + "/jwt-secret"
        return BackupScheduleService(
            source: BackupSource(
                target: target, binaryDirectory: binaries ?? "", blobs: blobs, secretFile: secret, striveVersion: StriveVersion.current),
            settings: config.backup, instance: config.instanceID, logger: logger)
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
