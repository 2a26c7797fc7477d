import Foundation
import StriveCore

/// The JWT secret a development or test server generates on first start and keeps in
/// `<data>/jwt-secret` (mode 0600), so tokens and API keys stay valid across restarts.
public enum DevelopmentSecrets {
    public struct StoreError: Error, CustomStringConvertible {
        public let description: String
    }

    public static func jwtSecret(dataDirectory: String) throws -> String {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: dataDirectory, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw StoreError(description: "\(dataDirectory) is a file, not a directory")
        }
        let path = dataDirectory + "/jwt-secret"
        if let existing = try? String(contentsOfFile: path, encoding: .utf8) {
            let secret = existing.trimmingCharacters(in: .whitespacesAndNewlines)
            guard SecretStrength.weakness(of: secret) == nil else {
                throw StoreError(description: "\(path) holds a weak secret; delete it to generate a new one")
            }
            return secret
        }
        do {
            try FileManager.default.createDirectory(
                atPath: dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]
            )
        } catch {
            throw StoreError(description: "cannot create \(dataDirectory): \((error as NSError).localizedDescription)")
        }
        let secret = SecretStrength.generate()
        // Write beside, then rename: a crash never leaves a truncated secret behind.
        let staging = path + ".tmp"
        guard
            FileManager.default.createFile(
                atPath: staging, contents: Data((secret + "\n").utf8), attributes: [.posixPermissions: 0o600]
            )
        else {
            throw StoreError(description: "cannot write \(path)")
        }
        guard rename(staging, path) == 0 else {
            throw StoreError(description: "cannot write \(path)")
        }
        return secret
    }
}
