import CStriveVips
import Foundation
import NIOCore
import NIOPosix
import StriveCore

/// Supabase Storage's transformation options (`/render/image/...?width&height&resize&quality&format`).
public struct ImageTransformation: Sendable, Equatable {
    public enum Resize: String, Sendable { case cover, contain, fill }
    public var width: Int?
    public var height: Int?
    public var resize: Resize = .cover
    public var quality: Int = 80
    /// `origin` keeps the original's format; nil picks the best the client accepts.
    public var keepFormat = false

    /// The options of a query string, each checked: a bad one is a 400 naming it.
    init(query: QueryLike, limits: ImageSettings) throws(StorageError) {
        func dimension(_ name: String) throws(StorageError) -> Int? {
            guard let text = query[name], !text.isEmpty else { return nil }
            guard let value = Int(text), (1...limits.dimension).contains(value) else {
                throw .invalidInput("\(name) must be a whole number from 1 to \(limits.dimension)")
            }
            return value
        }
        width = try dimension("width")
        height = try dimension("height")
        if let text = query["resize"], !text.isEmpty {
            guard let resize = Resize(rawValue: text) else { throw .invalidInput("resize must be cover, contain or fill") }
            self.resize = resize
        }
        if let text = query["quality"], !text.isEmpty {
            guard let value = Int(text), (20...100).contains(value) else { throw .invalidInput("quality must be from 20 to 100") }
            quality = value
        }
        if let text = query["format"], !text.isEmpty {
            guard text == "origin" else { throw .invalidInput("format must be origin (or left out for the best the client accepts)") }
            keepFormat = true
        }
    }

    /// A stable text of the options, for the variant's ETag.
    var signature: String { "w\(width ?? 0)h\(height ?? 0)\(resize.rawValue)q\(quality)\(keepFormat ? "o" : "a")" }
}

/// Reads a query parameter; the storage routes' `QueryString` and tests alike.
protocol QueryLike {
    subscript(_ key: String) -> String? { get }
}

extension QueryString: QueryLike {}

extension Dictionary: QueryLike where Key == String, Value == String {}

/// Image transformations with libvips (loaded at run time: without it, a clear 501 names what is missing,
/// never the untransformed bytes). The CPU work runs on NIO's thread pool, never on an event loop or the
/// concurrency pool.
public enum ImageTransformer {
    /// Names the libvips to load (`STRIVE_STORAGE_IMAGE_LIBRARY`); only a call before the first
    /// transformation counts.
    public static func use(library: String) {
        strive_vips_use(library)
    }

    /// Nil when libvips is usable; otherwise why not.
    public static var unavailableReason: String? {
        var error = [CChar](repeating: 0, count: 512)
        guard strive_vips_load(&error, error.count) != 0 else { return nil }
        return String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public struct Output: Sendable {
        public let bytes: ByteBuffer
        public let contentType: String
        public let width: Int
        public let height: Int
    }

    /// The format to write: the original's with `format=origin`, else AVIF or WebP when the client accepts
    /// them and libvips can write them, else the original's (JPEG or PNG; anything else becomes PNG).
    static func format(loader: String, accept: String?, keepFormat: Bool) -> (suffix: String, contentType: String) {
        // The loader's class name, e.g. `VipsForeignLoadJpegBuffer`.
        let original: (String, String) =
            loader.contains("jpeg")
            ? (".jpg", "image/jpeg")
            : loader.contains("webp")
                ? (".webp", "image/webp")
                : loader.contains("heif")
                    ? (".avif", "image/avif")
                    : (".png", "image/png")
        if keepFormat { return original }
        let accepted = (accept ?? "").lowercased()
        if accepted.contains("image/avif"), strive_vips_can_save(".avif") != 0 { return (".avif", "image/avif") }
        if accepted.contains("image/webp"), strive_vips_can_save(".webp") != 0 { return (".webp", "image/webp") }
        return original
    }

    public static func transform(_ source: [UInt8], _ options: ImageTransformation, accept: String?, limits: ImageSettings)
        async throws
        -> Output
    {
        try await NIOThreadPool.singleton.runIfActive {
            try transformNow(source, options, accept: accept, limits: limits)
        }
    }

    static func transformNow(_ source: [UInt8], _ options: ImageTransformation, accept: String?, limits: ImageSettings)
        throws(StorageError)
        -> Output
    {
        var error = [CChar](repeating: 0, count: 512)
        func message() -> String { String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        if let reason = unavailableReason { throw StorageError(.notImplemented, "FeatureNotEnabled", reason) }
        var width: Int32 = 0
        var height: Int32 = 0
        var pages: Int32 = 0
        var loader = [CChar](repeating: 0, count: 64)
        let probed = source.withUnsafeBytes { raw in
            strive_vips_probe(raw.baseAddress, raw.count, &width, &height, &pages, &loader, loader.count, &error, error.count)
        }
        guard probed == 0 else { throw StorageError(.unsupportedMediaType, "InvalidImage", "The object is not an image: \(message())") }
        guard Int(width) * Int(height) <= limits.sourcePixels else {
            throw StorageError(
                .contentTooLarge, "ImageTooLarge",
                "The image is \(width)×\(height) pixels; transformations take at most \(limits.sourcePixels) pixels")
        }
        let loaderName = String(decoding: loader.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).lowercased()
        let (suffix, contentType) = format(loader: loaderName, accept: accept, keepFormat: options.keepFormat)
        let saveOptions = suffix == ".png" ? suffix : "\(suffix)[Q=\(options.quality)]"
        let mode: Int32 =
            switch options.resize {
            case .cover: 0
            case .contain: 1
            case .fill: 2
            }
        var output: UnsafeMutableRawPointer?
        var length = 0
        var outputWidth: Int32 = 0
        var outputHeight: Int32 = 0
        let transformed = source.withUnsafeBytes { raw in
            strive_vips_transform(
                raw.baseAddress, raw.count, Int32(options.width ?? 0), Int32(options.height ?? 0), mode, saveOptions, &output, &length,
                &outputWidth, &outputHeight, &error, error.count)
        }
        guard transformed == 0, let output else {
            throw StorageError(.unprocessableContent, "TransformationFailed", "The image could not be transformed: \(message())")
        }
        defer { strive_vips_free(output) }
        return Output(
            bytes: ByteBuffer(bytes: UnsafeRawBufferPointer(start: output, count: length)), contentType: contentType,
            width: Int(outputWidth), height: Int(outputHeight))
    }
}
