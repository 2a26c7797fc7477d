import HTTPTypes
import Hummingbird
import Synchronization

/// The paths and methods every surface registered, so that a request no route answers can be told
/// apart: a path that exists under other methods is a 405 with `Allow`, anything else a 404.
/// (Hummingbird's router answers both with 404 and keeps its route table to itself.)
final class RouteCatalog: Sendable {
    private struct Route {
        let pattern: [String]
        var methods: Set<HTTPRequest.Method>
    }

    private let routes = Mutex<[Route]>([])

    /// What `Allow` says for `path`: the matched route's methods, narrowed by its resource, HEAD with GET.
    func allowedMethods(for path: String) async -> [HTTPRequest.Method] {
        var methods = self.methods(for: path)
        if methods.contains(.get) && !methods.contains(.head) { methods.append(.head) }
        return methods
    }

    func record(_ path: RouterPath, _ method: HTTPRequest.Method) {
        let pattern = path.components.map(\.description)
        routes.withLock { routes in
            if let index = routes.firstIndex(where: { $0.pattern == pattern }) {
                routes[index].methods.insert(method)
            } else {
                routes.append(Route(pattern: pattern, methods: [method]))
            }
        }
    }

    /// The methods of the route the router matches `path` to, sorted for the `Allow` header; empty when
    /// none does. Like Hummingbird's trie, the most specific pattern wins (literal segments before
    /// captures before wildcards), whatever methods it has.
    func methods(for path: String) -> [HTTPRequest.Method] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        let best = routes.withLock { routes in
            routes.filter { Self.matches($0.pattern, segments) }
                .max { $0.pattern.map(Self.priority).lexicographicallyPrecedes($1.pattern.map(Self.priority)) }
        }
        return (best?.methods ?? []).sorted { $0.rawValue < $1.rawValue }
    }

    private static func priority(_ component: String) -> Int {
        if component == "**" { return -5 }
        if component == "*" { return -4 }
        if component.hasPrefix("{") && component.hasSuffix("}") { return -3 }
        if component.contains("*") { return -2 }
        if component.contains("{") { return -1 }
        return 0
    }

    private static func matches(_ pattern: [String], _ segments: [Substring]) -> Bool {
        var index = 0
        for (position, component) in pattern.enumerated() {
            if component == "**" { return segments.count > position }
            guard index < segments.count else { return false }
            if priority(component) == 0 && component != segments[index] { return false }
            index += 1
        }
        return index == segments.count
    }
}

/// A router that tells the catalog of every route it adds; surfaces register on it as on any router.
struct CatalogingRouter<Context: RequestContext>: RouterMethods {
    let router: Router<Context>
    let catalog: RouteCatalog

    @discardableResult
    func on<Responder: HTTPResponder>(_ path: RouterPath, method: HTTPRequest.Method, responder: Responder) -> Self
    where Responder.Context == Context {
        catalog.record(path, method)
        router.on(path, method: method, responder: responder)
        return self
    }

    @discardableResult
    func add(middleware: any MiddlewareProtocol<Request, Response, Context>) -> Self {
        router.add(middleware: middleware)
        return self
    }
}
