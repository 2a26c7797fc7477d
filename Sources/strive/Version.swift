import ArgumentParser

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print Strive's version.")

    func run() {
        print(StriveVersionText.full)
    }
}
