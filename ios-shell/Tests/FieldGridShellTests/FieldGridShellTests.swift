@preconcurrency import FieldGridCore
@testable import FieldGridShell
import XCTest

/// Runs on an iOS simulator (the XCFramework has iOS slices only): on a Mac,
/// ./build-xcframework.sh, then
/// `xcodebuild test -scheme FieldGrid -destination 'platform=iOS Simulator,name=iPhone 15'`. Sync against a server is
/// covered on the desktop by tests/kotlin and tests/python; these check the
/// Swift layer itself.
final class FieldGridShellTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    private struct FixedKey: KeyProvider {
        let key: Data
        func databaseKey() throws -> Data { key }
    }

    private func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func testAKeyedStoreRefusesAnotherKeyWithATypedError() async throws {
        let key = FixedKey(key: Data((0..<32).map { UInt8($0) }))
        let grid = try await FieldGrid.open(path: path("phone.db"), keys: key)
        let counts = try await grid.statusCounts()
        XCTAssertEqual(counts.records, 0)
        grid.store.closeStore()
        do {
            _ = try await FieldGrid.open(path: path("phone.db"), keys: FixedKey(key: Data(count: 32)))
            XCTFail("opened with a wrong key")
        } catch FieldGridError.Storage(let problem, _) {
            XCTAssertEqual(problem, .wrongKey)
        }
    }

    func testABadIdNumberIsAValidationErrorNamingTheField() async throws {
        let grid = try await FieldGrid.open(path: path("phone.db"), keys: nil)
        do {
            _ = try await grid.createResident(NewResident(
                gridId: "grid-a", name: "李四", sex: .male, idNumber: "370502195001010010", residence: .registered))
            XCTFail("accepted")
        } catch let FieldGridError.Validation(field, _, reason) {
            // grid-a is unknown on a store that never signed in: the first
            // refused field is reported, and never the value.
            XCTAssertFalse(field.isEmpty)
            XCTAssertFalse(reason.contains("370502195001010010"))
        }
        XCTAssertThrowsError(try checkIdNumber(value: "370502195001010010")) { error in
            guard case FieldGridError.Validation(let field, _, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(field, "id_number")
        }
    }

    func testMaskedFormsHidePersonalData() {
        XCTAssertEqual(maskName(name: "张小明"), "张*明")
        XCTAssertEqual(maskPhone(phone: "13812345678"), "138****5678")
    }

    func testCallsFromEightTasksAtOnceComplete() async throws {
        let grid = try await FieldGrid.open(path: path("phone.db"), keys: nil)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    for _ in 0..<20 { _ = try await grid.statusCounts() }
                }
            }
            try await group.waitForAll()
        }
    }
}
