import ArgumentParser
import OutboxBridgeCLI

/// The process entry point; everything else lives in `OutboxBridgeCLI` so tests can reach it.
@main
extension OutboxBridgeCommand {}
