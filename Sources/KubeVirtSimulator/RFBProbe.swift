import NIOCore
import WebSocketSupport

/// The viewer's half of an RFB 3.8 handshake over a websocket, for the demo's self-test and for tests:
/// version, security None, ClientInit, then one raw framebuffer update of a small area.
public enum RFBProbe {
    public struct Result: Sendable, Equatable {
        public var width: Int
        public var height: Int
        public var name: String
        /// RGB of the pixels of the requested row, decoded from the server's 32 bpp little-endian format.
        public var pixels: [[UInt8]]
    }

    public enum ProbeError: Error, Equatable {
        case unexpectedGreeting(String)
        case noSecurityTypeNone
        case securityFailed
        case unexpectedMessage(UInt8)
    }

    /// Runs the handshake and reads `columns` pixels of row `row`.
    public static func run(on session: WebSocketClientSession, row: Int = 0, columns: Int = 8) async throws -> Result {
        let greeting = String(decoding: try await session.read(count: 12), as: UTF8.self)
        guard greeting.hasPrefix("RFB 003.") else { throw ProbeError.unexpectedGreeting(greeting) }
        try await session.send(Array("RFB 003.008\n".utf8))
        let typeCount = Int(try await session.read(count: 1)[0])
        let types = try await session.read(count: typeCount)
        guard types.contains(1) else { throw ProbeError.noSecurityTypeNone }
        try await session.send([1])
        guard try await session.read(count: 4) == [0, 0, 0, 0] else { throw ProbeError.securityFailed }
        try await session.send([1])  // ClientInit, shared

        var serverInit = ByteBuffer(bytes: try await session.read(count: 24))
        let width = Int(serverInit.readInteger(as: UInt16.self)!)
        let height = Int(serverInit.readInteger(as: UInt16.self)!)
        serverInit.moveReaderIndex(forwardBy: 16)
        let nameLength = Int(serverInit.readInteger(as: UInt32.self)!)
        let name = String(decoding: try await session.read(count: nameLength), as: UTF8.self)

        // Ask for 32 bpp little-endian, red at bits 16-23: the layout decoded below.
        var setPixelFormat = ByteBuffer(bytes: [0, 0, 0, 0, 32, 24, 0, 1])
        for max in [UInt16(255), 255, 255] { setPixelFormat.writeInteger(max) }
        setPixelFormat.writeBytes([16, 8, 0, 0, 0, 0])
        try await session.send(setPixelFormat.readableBytesView)
        var request = ByteBuffer(bytes: [3, 0])
        for value in [UInt16(0), UInt16(row), UInt16(columns), 1] { request.writeInteger(value) }
        try await session.send(request.readableBytesView)

        var header = ByteBuffer(bytes: try await session.read(count: 4))
        let type = header.readInteger(as: UInt8.self)!
        guard type == 0 else { throw ProbeError.unexpectedMessage(type) }
        var rectangle = ByteBuffer(bytes: try await session.read(count: 12))
        rectangle.moveReaderIndex(forwardBy: 4)
        let rectangleWidth = Int(rectangle.readInteger(as: UInt16.self)!)
        let rectangleHeight = Int(rectangle.readInteger(as: UInt16.self)!)
        let raw = try await session.read(count: rectangleWidth * rectangleHeight * 4)
        let pixels = stride(from: 0, to: raw.count, by: 4).map { [raw[$0 + 2], raw[$0 + 1], raw[$0]] }
        return Result(width: width, height: height, name: name, pixels: pixels)
    }
}
