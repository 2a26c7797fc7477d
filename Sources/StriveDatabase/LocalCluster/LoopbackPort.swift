import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Small checks on TCP ports of this machine, done before starting servers so a conflict is reported as
/// one clear sentence rather than a failure deep inside a server's start-up.
public enum LoopbackPort {
    /// A port the OS considers free on `host` right now (bind to port 0 and read it back).
    public static func free(host: String = "127.0.0.1") -> Int? {
        bindProbe(host: host, port: 0)
    }

    /// Whether `port` can be bound on `host` right now.
    public static func isAvailable(_ port: Int, host: String) -> Bool {
        port == 0 || bindProbe(host: host, port: port) != nil
    }

    private static func bindProbe(host: String, port: Int) -> Int? {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
            hints.ai_socktype = SOCK_STREAM
        #endif
        hints.ai_flags = AI_PASSIVE
        var info: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &info) == 0, let first = info else { return nil }
        defer { freeaddrinfo(info) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var reuse: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else { return nil }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { return nil }
        let family = storage.ss_family
        let boundPort: UInt16 = withUnsafeBytes(of: storage) { raw in
            if family == sa_family_t(AF_INET6) {
                return UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port)
            }
            return UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port)
        }
        return Int(boundPort)
    }
}
