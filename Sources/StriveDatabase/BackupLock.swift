/// The advisory lock a running backup holds (exclusively, on its own session) for as long as its snapshot
/// is open. Deleting blobs (released versions, orphans) tries it shared, per transaction, and skips its
/// turn while a backup runs, so every object the backup's snapshot references keeps its bytes until copied.
public enum BackupLock {
    public static let key: Int64 = 0x5374_7269_7665_424B
}
