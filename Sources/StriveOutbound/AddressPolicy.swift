import Foundation
import NIOCore
import NIOPosix
import StriveCore

#if canImport(Glibc)
    import Glibc
#endif

/// Which hosts a request from SQL may reach. SQL that anyone's write can trigger must not become a way
/// into the server's own network: a URL whose host is, or resolves to, a loopback, private, link-local
/// (cloud metadata, 169.254.169.254), shared, multicast or reserved address is refused unless
/// `STRIVE_NET_ALLOW_PRIVATE` names that host or a network holding the address.
///
/// Addresses are checked as resolved just before the request; the HTTP client resolves the name again
/// to connect, so a name whose DNS answer changes within that moment (rebinding) is not covered.
public struct AddressPolicy: Sendable {
    let allowedHosts: Set<String>
    let allowedNetworks: [IPNetwork]

    static let refused: [IPNetwork] = [
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
        "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
        "::/128", "::1/128", "64:ff9b::/96", "fc00::/7", "fe80::/10", "ff00::/8",
    ].compactMap(IPNetwork.init)
    static let mappedIPv4 = IPNetwork("::ffff:0.0.0.0/96")

    public init(allowing entries: [String]) {
        allowedNetworks = entries.compactMap(IPNetwork.init)
        allowedHosts = Set(entries.filter { IPNetwork($0) == nil }.map { $0.lowercased() })
    }

    /// Nil when `host` may be reached; otherwise why not (for the recorded error).
    func refusal(host: String) async -> String? {
        let name = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if allowedHosts.contains(name) { return nil }
        let addresses: [[UInt8]]
        if let literal = IPNetwork.bytes(of: name) {
            addresses = [literal]
        } else {
            do {
                addresses = try await Self.resolve(name)
            } catch {
                return "\(host) could not be resolved"
            }
        }
        guard !addresses.isEmpty else { return "\(host) could not be resolved" }
        for address in addresses {
            let checked = address.count == 16 && Self.mappedIPv4?.contains(address: address) == true ? Array(address[12...]) : address
            if Self.refused.contains(where: { $0.contains(address: checked) })
                && !allowedNetworks.contains(where: { $0.contains(address: checked) })
            {
                return "\(host) is a private, loopback, link-local or reserved address (\(IPNetwork.text(of: checked))); "
                    + "STRIVE_NET_ALLOW_PRIVATE can allow it"
            }
        }
        return nil
    }

    struct ResolutionFailed: Error {}

    /// Every address the system resolver gives for `name`, resolved on NIO's thread pool (getaddrinfo blocks).
    static func resolve(_ name: String) async throws -> [[UInt8]] {
        try await NIOThreadPool.singleton.runIfActive {
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var list: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(name, nil, &hints, &list) == 0, let first = list else { throw ResolutionFailed() }
            defer { freeaddrinfo(first) }
            var addresses: [[UInt8]] = []
            var cursor: UnsafeMutablePointer<addrinfo>? = first
            while let entry = cursor {
                if let socket = entry.pointee.ai_addr {
                    switch Int32(socket.pointee.sa_family) {
                    case AF_INET:
                        var address = socket.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                        addresses.append(withUnsafeBytes(of: &address) { Array($0) })
                    case AF_INET6:
                        var address = socket.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                        addresses.append(withUnsafeBytes(of: &address) { Array($0) })
                    default: break
                    }
                }
                cursor = entry.pointee.ai_next
            }
            return addresses
        }
    }
}
