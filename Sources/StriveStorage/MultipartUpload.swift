import Foundation
import Hummingbird
import MultipartKit
import NIOConcurrencyHelpers
import NIOCore

/// The form fields that travel beside the file in a multipart upload (storage-js sends `cacheControl`
/// and `metadata` before the file; a client may also send them after it).
struct UploadFields: Sendable, Equatable {
    var cacheControl: String?
    var metadata: String?
    var contentType: String?
    /// The file part's own Content-Type.
    var fileContentType: String?
}

/// The file of a `multipart/form-data` upload as a stream of its bytes, parsed as they arrive so the body
/// is never held whole. The file is the part with a filename, or any part not named as a known field.
/// Everything that is not file bytes (part headers, fields) is capped, so a hostile body cannot grow
/// memory; the file's own size is capped by the blob store's limit.
struct MultipartFileStream: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    let body: RequestBody
    let boundary: String
    /// Called with the file part's Content-Type before any of its bytes are accepted.
    let checkType: @Sendable (String) throws -> Void
    let fields: NIOLockedValueBox<UploadFields>

    static let knownFields: Set<String> = ["cacheControl", "metadata", "contentType"]
    static let maximumOverhead = 1 << 20

    init(body: RequestBody, boundary: String, checkType: @escaping @Sendable (String) throws -> Void) {
        self.body = body
        self.boundary = boundary
        self.checkType = checkType
        self.fields = NIOLockedValueBox(UploadFields())
    }

    var collectedFields: UploadFields { fields.withLockedValue { $0 } }

    /// The boundary of a `multipart/form-data; boundary=…` content type, or nil for any other type.
    static func boundary(of contentType: String) -> String? {
        let parameters = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard parameters.first?.lowercased() == "multipart/form-data" else { return nil }
        for parameter in parameters.dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2, pair[0].lowercased() == "boundary" else { continue }
            let value = pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            return (1...70).contains(value.utf8.count) ? value : nil
        }
        return nil
    }

    func makeAsyncIterator() -> Iterator {
        Iterator(source: body.makeAsyncIterator(), parser: MultipartParser(boundary: boundary), stream: self)
    }

    /// What the parser's callbacks saw; the parser is synchronous, the iterator drains this between chunks.
    final class PartState {
        var headers: [(String, String)] = []
        var kind: Kind?
        var fieldValue = ByteBuffer()
        var pending: [ByteBuffer] = []
        var sawFile = false
        var failure: (any Error)?
        var overhead = 0

        enum Kind {
            case file
            case field(String)
            case ignored
        }
    }

    struct Iterator: AsyncIteratorProtocol {
        var source: RequestBody.AsyncIterator
        let parser: MultipartParser
        let state = PartState()
        let stream: MultipartFileStream
        var finished = false

        init(source: RequestBody.AsyncIterator, parser: MultipartParser, stream: MultipartFileStream) {
            self.source = source
            self.parser = parser
            self.stream = stream
            let state = self.state
            parser.onHeader = { name, value in state.headers.append((name, value)) }
            parser.onBody = { buffer in
                switch Self.kind(of: state, stream: stream) {
                case .file: state.pending.append(buffer)
                case .field: state.fieldValue.writeImmutableBuffer(buffer)
                case .ignored: break
                }
            }
            parser.onPartComplete = {
                if case .field(let name) = Self.kind(of: state, stream: stream) {
                    let value = String(buffer: state.fieldValue)
                    stream.fields.withLockedValue { fields in
                        switch name {
                        case "cacheControl": fields.cacheControl = value
                        case "metadata": fields.metadata = value
                        default: fields.contentType = value
                        }
                    }
                }
                state.headers = []
                state.kind = nil
                state.fieldValue.clear()
            }
        }

        /// Decides, once per part, what the part is: its headers are complete by its first byte.
        static func kind(of state: PartState, stream: MultipartFileStream) -> PartState.Kind {
            if let kind = state.kind { return kind }
            let disposition = state.headers.first { $0.0.lowercased() == "content-disposition" }?.1 ?? ""
            let name = parameter("name", in: disposition)
            let kind: PartState.Kind
            if parameter("filename", in: disposition) == nil, let name, MultipartFileStream.knownFields.contains(name) {
                kind = .field(name)
            } else if state.sawFile {
                kind = .ignored
            } else {
                kind = .file
                state.sawFile = true
                let type =
                    state.headers.first { $0.0.lowercased() == "content-type" }?.1
                    ?? stream.fields.withLockedValue { $0.contentType } ?? "application/octet-stream"
                stream.fields.withLockedValue { $0.fileContentType = type }
                do {
                    try stream.checkType(type)
                } catch {
                    state.failure = error
                }
            }
            state.kind = kind
            return kind
        }

        static func parameter(_ name: String, in disposition: String) -> String? {
            for item in disposition.split(separator: ";").dropFirst() {
                let pair = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                if pair.count == 2, pair[0].lowercased() == name {
                    return pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                }
            }
            return nil
        }

        mutating func next() async throws -> ByteBuffer? {
            while true {
                if let failure = state.failure { throw failure }
                if !state.pending.isEmpty {
                    let chunks = state.pending
                    state.pending = []
                    return chunks.count == 1 ? chunks[0] : chunks.dropFirst().reduce(into: chunks[0]) { $0.writeImmutableBuffer($1) }
                }
                guard !finished else { return nil }
                guard let input = try await source.next() else {
                    finished = true
                    guard state.sawFile else {
                        throw StorageError.invalidInput("the multipart body has no file part")
                    }
                    continue
                }
                do {
                    try parser.execute(input)
                } catch {
                    throw StorageError.invalidInput("the multipart body is malformed")
                }
                // Everything that did not become file bytes (headers, fields, boundaries) counts as overhead.
                state.overhead += input.readableBytes - state.pending.reduce(0) { $0 + $1.readableBytes }
                guard state.overhead <= MultipartFileStream.maximumOverhead else {
                    throw StorageError.invalidInput("multipart fields and part headers are limited to 1 MiB")
                }
            }
        }
    }
}
