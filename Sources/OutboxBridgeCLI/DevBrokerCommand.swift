import ArgumentParser

struct DevBrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev-broker", abstract: "Run librdkafka's in-memory mock cluster on loopback.")

    func run() async throws {
        throw ValidationError("'dev-broker' is not implemented yet")
    }
}
