import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import StriveTestSupport
import Testing

/// The console in a real browser: headless Chromium driven over WebDriver (chromedriver) against the real
/// binary with the demo data. Screenshots of each page go to `.build/console-screenshots/`.
@Suite("Console in Chromium", .capacityBound, .serialized)
struct ConsoleBrowserTests {
    @Test func aPlatformAdminAdministersThroughTheConsoleAndOthersAreRefused() async throws {
        let driverPath = try #require(ToolProcess.find("chromedriver"), "chromium-driver is required (Scripts/test installs it)")
        let chromium = try #require(ToolProcess.find("chromium"), "chromium is required (Scripts/test installs it)")
        let directory = temporaryPath("strive-console")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try StriveProcess.start(["serve", "--data-dir", directory, "--port", "0"])
        defer { server.signal(SIGTERM) }
        let base = try await server.waitUntilReady()
        let seed = try await StriveProcess.run(["seed", "--data-dir", directory])
        func login(_ role: String) -> String? {
            seed.stdout.split(separator: "\n").first { $0.contains(" \(role) ") }?.split(separator: " ").first.map(String.init)
        }
        let member = try #require(login("MEMBER"), "\(seed.stdout)")
        let owner = try #require(login("OWNER"), "\(seed.stdout)")

        let browser = try await WebDriver.start(driver: driverPath, chromium: chromium)
        defer { browser.quit() }
        let shots = Repository.root.appendingPathComponent(".build/console-screenshots").path
        try FileManager.default.createDirectory(atPath: shots, withIntermediateDirectories: true)

        try await browser.open(base + "/console")
        // First contentful paint, as the browser records it (Paint Timing); it may land just after the load.
        var firstPaint: Double?
        _ = try await browser.waitFor {
            firstPaint =
                try await browser.script(
                    "return performance.getEntriesByType('paint').find(e => e.name === 'first-contentful-paint')?.startTime ?? null")
                as? Double
            return firstPaint != nil
        }
        try await browser.type("input[name=email]", "staff@strive.example")
        try await browser.type("input[name=password]", "strive-demo-password")
        try await browser.click("form.sign-in button[type=submit]")
        let score = try await browser.text(of: "#score")
        #expect(score == "100", "the health score of the seeded database")
        try await browser.screenshot(to: shots + "/health.png")
        var timings: [String: Double] = ["first paint": firstPaint ?? -1]

        // Find a row with a filter.
        timings["tables"] = try await browser.timedNavigation(
            to: "#/tables?table=users&column=email&op=eq&value=\(member)", until: "#row-count")
        let counted = try await browser.waitFor { try await browser.text(of: "#row-count").hasPrefix("1 rows") }
        if !counted {
            let shown = (try? await browser.text(of: "#row-count")) ?? "(none)"
            let page = (try? await browser.text(of: "main")) ?? "(none)"
            Issue.record("the filtered table did not count 1 row: row count \(shown); page: \(page.prefix(2000))")
        }
        // The count and the rows render separately: under load the table can come a moment later.
        #expect(try await browser.waitFor { try await browser.text(of: "main table:last-of-type tbody").contains(member) })
        try await browser.screenshot(to: shots + "/tables.png")

        // Upload an image (through the resumable protocol), preview a transformation of it, delete it again.
        timings["storage"] = try await browser.timedNavigation(
            to: "#/storage?bucket=public-assets", until: "form[aria-label='Upload an object']")
        let file = directory + "/console-upload.png"
        // A 32×32 red PNG (made with Pillow).
        let png =
            "iVBORw0KGgoAAAANSUhEUgAAACAAAAAgCAIAAAD8GO2jAAAAKUlEQVR4nO3NMQEAAAjDMMC/MGRhgn2pgKa3sk34DwAAAAAAAAAAAN46CP0BCMDA+XQAAAAASUVORK5CYII="
        try #require(Data(base64Encoded: png)).write(to: URL(fileURLWithPath: file))
        try await browser.type("input[name=file]", file)
        try await browser.type("input[name=path]", "console/console-upload.png")
        try await browser.click("form[aria-label='Upload an object'] button")
        try await browser.click("a[href*='prefix=console']")
        #expect(try await browser.waitFor { try await browser.text(of: "main table tbody").contains("console-upload.png") })
        let stats = try await browser.text(of: "#storage-stats")
        #expect(stats.contains("Resumable uploads in progress: 0") && stats.contains("Image transformations: on."), "\(stats)")
        try await browser.clickButton(startingWith: "Preview")
        let previewed = try await browser.waitFor {
            (try await browser.script("return document.querySelector('#preview img')?.naturalWidth ?? 0") as? NSNumber)?.intValue == 32
        }
        #expect(previewed, "the preview shows the transformed image")
        try await browser.screenshot(to: shots + "/storage.png")
        try await browser.clickButton(startingWith: "Delete")
        try await browser.acceptAlert()
        #expect(try await browser.waitFor { try await browser.text(of: "main").contains("No objects here.") })

        // Ban a user.
        timings["users"] = try await browser.timedNavigation(to: "#/users?search=\(member)", until: "main table")
        #expect(try await browser.text(of: "main table tbody").contains("email"), "the user page lists how each user signs in")
        try await browser.click("main table button")
        #expect(try await browser.waitFor { try await browser.text(of: "main table tbody").contains("banned") })
        try await browser.screenshot(to: shots + "/users.png")
        for page in ["background", "realtime", "migrations", "backups", "errors"] {
            timings[page] = try await browser.timedNavigation(to: "#/\(page)", until: "main h2")
            try await browser.screenshot(to: shots + "/\(page).png")
        }

        // Anyone else is refused.
        try await browser.click("#sign-out")
        try await browser.type("input[name=email]", owner)
        try await browser.type("input[name=password]", "strive-demo-password")
        try await browser.click("form.sign-in button[type=submit]")
        #expect(try await browser.text(of: "#sign-in-error") == "This account is not a platform admin.")
        try await browser.screenshot(to: shots + "/refused.png")
        print("console timings (ms): \(timings.sorted { $0.key < $1.key }.map { "\($0.key) \(Int($0.value))" }.joined(separator: ", "))")
    }
}

/// A W3C WebDriver session on chromedriver, just what the console test needs.
final class WebDriver: @unchecked Sendable {
    let process: Process
    let endpoint: String
    let session: String

    private init(process: Process, endpoint: String, session: String) {
        self.process = process
        self.endpoint = endpoint
        self.session = session
    }

    static func start(driver: String, chromium: String) async throws -> WebDriver {
        let port = Int.random(in: 20000..<60000)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: driver)
        process.arguments = ["--port=\(port)"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let endpoint = "http://127.0.0.1:\(port)"
        for _ in 0..<100 {
            if (try? await request("GET", endpoint + "/status")) != nil { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let capabilities: [String: Any] = [
            "capabilities": [
                "alwaysMatch": [
                    "browserName": "chrome",
                    "goog:chromeOptions": [
                        "binary": chromium,
                        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1366,900"],
                    ],
                ]
            ]
        ]
        let created = try await request("POST", endpoint + "/session", capabilities)
        guard let session = (created["value"] as? [String: Any])?["sessionId"] as? String else {
            process.terminate()
            throw StriveProcess.Failure("chromedriver made no session: \(created)")
        }
        return WebDriver(process: process, endpoint: endpoint, session: session)
    }

    func quit() {
        let url = endpoint + "/session/" + session
        Task { _ = try? await Self.request("DELETE", url) }
        process.terminate()
    }

    @discardableResult
    func command(_ method: String, _ path: String, _ body: [String: Any]? = nil) async throws -> Any? {
        // WebDriver wants a JSON object on every POST, empty when the command takes no parameters.
        let answer = try await Self.request(method, "\(endpoint)/session/\(session)\(path)", body ?? (method == "POST" ? [:] : nil))
        if let error = (answer["value"] as? [String: Any])?["error"] as? String {
            throw StriveProcess.Failure("WebDriver \(method) \(path): \(error): \((answer["value"] as? [String: Any])?["message"] ?? "")")
        }
        return answer["value"]
    }

    func open(_ url: String) async throws { try await command("POST", "/url", ["url": url]) }

    /// The element `selector` finds, waited for up to 20 s as `waitFor` waits (the page renders after its API
    /// calls, which queue behind the rest of the suite under CI load).
    /// Waits up to a minute: with the whole suite on two cores (100 MiB uploads, image work beside this
    /// test) the console's data requests have queued for more than 20 s. It returns as soon as it is there.
    func element(_ selector: String) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            do {
                let found = try await command("POST", "/element", ["using": "css selector", "value": selector]) as? [String: Any]
                if let id = found?.values.first as? String { return id }
            } catch  where ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
                continue
            }
            // Say what the page showed instead (an error message, a half-drawn page).
            let shown = (try? await script("return document.querySelector('main')?.innerText ?? '(no main)'") as? String) ?? "(unreadable)"
            throw StriveProcess.Failure("no element \(selector) within 60 s; the page showed: \(shown.prefix(1000))")
        }
    }

    func type(_ selector: String, _ text: String) async throws {
        let id = try await element(selector)
        try await command("POST", "/element/\(id)/clear")
        try await command("POST", "/element/\(id)/value", ["text": text])
    }

    /// CSS cannot select by text: clicks the first button of the page whose label starts with `prefix`.
    func clickButton(startingWith prefix: String) async throws {
        try await script(
            "[...document.querySelectorAll('main button')].find(b => b.textContent.startsWith(arguments[0])).click()", [prefix])
    }

    func click(_ selector: String) async throws {
        _ = try await onFreshElement(selector) { id in try await self.command("POST", "/element/\(id)/click") }
    }

    func text(of selector: String) async throws -> String {
        try await onFreshElement(selector) { id in try await self.command("GET", "/element/\(id)/text") as? String ?? "" }
    }

    /// Runs `body` on the element `selector` finds, finding it again when the page re-rendered it between
    /// the two commands ("stale element reference"), for up to 10 s.
    func onFreshElement<T>(_ selector: String, _ body: (String) async throws -> T) async throws -> T {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            do {
                return try await body(try await element(selector))
            } catch let error as StriveProcess.Failure where error.description.contains("stale element") && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    @discardableResult
    func script(_ source: String, _ arguments: [Any] = []) async throws -> Any? {
        try await command("POST", "/execute/sync", ["script": source, "args": arguments])
    }

    func acceptAlert() async throws {
        let deadline = ContinuousClock.now + .seconds(5)
        while true {
            do {
                try await command("POST", "/alert/accept")
                return
            } catch  where ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    /// Milliseconds from setting the hash to `selector` being on the page, measured in the page.
    func timedNavigation(to hash: String, until selector: String) async throws -> Double {
        try await script("document.querySelector('main').replaceChildren()")
        let started = try await script("const t = performance.now(); location.hash = arguments[0]; return t", [hash]) as? Double
        _ = try await element(selector)
        let now = try await script("return performance.now()") as? Double
        return (now ?? 0) - (started ?? 0)
    }

    /// Polls `condition` for up to 60 s: a page's data requests queue behind the rest of the suite.
    func waitFor(_ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if (try? await condition()) == true { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    func screenshot(to path: String) async throws {
        let encoded = try await command("GET", "/screenshot") as? String ?? ""
        try Data(base64Encoded: encoded)?.write(to: URL(fileURLWithPath: path))
    }

    static func request(_ method: String, _ url: String, _ body: [String: Any]? = nil) async throws -> [String: Any] {
        var request = HTTPClientRequest(url: url)
        request.method = .RAW(value: method)
        if let body {
            request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: body)))
            request.headers.add(name: "Content-Type", value: "application/json")
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let data = try await response.body.collect(upTo: 64 << 20)
        return (try? JSONSerialization.jsonObject(with: Data(buffer: data))) as? [String: Any] ?? [:]
    }
}
