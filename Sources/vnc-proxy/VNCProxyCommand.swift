import ArgumentParser

@main
struct VNCProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vnc-proxy",
        abstract: "A websocket proxy in front of KubeVirt VNC consoles, authorised by LabOrchestrator tokens.",
        subcommands: [ServeCommand.self, TokenCommand.self, ConnectCommand.self, DemoCommand.self],
        defaultSubcommand: ServeCommand.self)
}
