import Foundation
import Security

/// Supplies the store's 32-byte database key.
public protocol KeyProvider: Sendable {
    func databaseKey() throws -> Data
}

/// The Keychain refused to store or return the key.
public struct KeychainError: Error, Equatable {
    public let status: OSStatus
}

/// The database key in the Keychain: 32 random bytes made on first use,
/// readable after the phone's first unlock since boot (so background sync
/// works with the screen locked) and never leaving this device
/// (`kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly`: not in backups, not
/// migrated to a new phone; the data comes back from the server instead).
public struct KeychainKeyProvider: KeyProvider {
    public let service: String
    public let account: String

    public init(service: String = "cn.fieldgrid", account: String = "database-key") {
        self.service = service
        self.account = account
    }

    public func databaseKey() throws -> Data {
        if let key = try read() { return key }
        var bytes = Data(count: 32)
        let status = bytes.withUnsafeMutableBytes { SecRandomCopyBytes(kSecRandomDefault, 32, $0.baseAddress!) }
        guard status == errSecSuccess else { throw KeychainError(status: status) }
        var add = query()
        add[kSecValueData as String] = bytes
        add[kSecAttrAccessible as String] = kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly
        let added = SecItemAdd(add as CFDictionary, nil)
        if added == errSecDuplicateItem, let key = try read() { return key } // another thread won
        guard added == errSecSuccess else { throw KeychainError(status: added) }
        return bytes
    }

    private func query() -> [String: Any] {
        [kSecClass as String: kSecClassGenericPassword, kSecAttrService as String: service, kSecAttrAccount as String: account]
    }

    private func read() throws -> Data? {
        var q = query()
        q[kSecReturnData as String] = true
        q[kSecMatchLimit as String] = kSecMatchLimitOne
        var item: CFTypeRef?
        let status = SecItemCopyMatching(q as CFDictionary, &item)
        if status == errSecItemNotFound { return nil }
        guard status == errSecSuccess else { throw KeychainError(status: status) }
        guard let data = item as? Data, data.count == 32 else { throw KeychainError(status: errSecDecode) }
        return data
    }
}
