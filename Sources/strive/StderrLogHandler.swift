import Foundation
import Logging

/// Log lines on stderr, in swift-log's `StreamLogHandler` layout
/// (`2026-11-29T18:14:57+0000 info strive: key=value [source] message`).
///
/// Not `StreamLogHandler` itself: it re-renders all of its metadata every time one value is set, and a
/// request sets several (request id, role, user, organization, and PostgresNIO's connection id on every
/// statement) whether or not anything is logged — a few percent of a request's CPU. This one renders
/// only the lines it writes.
struct StderrLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { _, explicit in explicit } }
        let rendered = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let line =
            "\(Self.timestamp()) \(event.level) \(label):\(rendered.isEmpty ? "" : " " + rendered) [\(event.source)] \(event.message)\n"
        // One write per line: lines from different threads never interleave.
        FileHandle.standardError.write(Data(line.utf8))
    }

    private static func timestamp() -> String {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let count = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &parts)
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
