import OutboxBridgeCLI

await OutboxBridgeCommand.main()
