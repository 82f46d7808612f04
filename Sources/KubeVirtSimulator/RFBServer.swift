import NIOCore

/// A minimal RFB 3.8 server (RFC 6143): security type None, a fixed test pattern, raw encoding.
///
/// It is a pure state machine: bytes from the viewer in, bytes for the viewer out. It answers every
/// non-incremental FramebufferUpdateRequest with the requested area, and an incremental one only when
/// the pixel format changed (the picture never changes).
final class RFBServer {
    enum ProtocolError: Error, Equatable {
        case unsupportedVersion
        case unsupportedSecurityType(UInt8)
        case unknownMessage(UInt8)
        case unsupportedPixelFormat
        case cutTextTooLong
    }

    private enum Phase {
        case version
        case securityChoice(minor: Int)
        case clientInit
        case normal
    }

    struct PixelFormat: Equatable {
        var bitsPerPixel: UInt8 = 32
        var depth: UInt8 = 24
        var bigEndian = false
        var trueColour = true
        var redMax: UInt16 = 255, greenMax: UInt16 = 255, blueMax: UInt16 = 255
        var redShift: UInt8 = 16, greenShift: UInt8 = 8, blueShift: UInt8 = 0
    }

    let width: Int
    let height: Int
    private let name: String
    private var phase = Phase.version
    private var input = ByteBuffer()
    private var pixelFormat = PixelFormat()
    private var sentFormat: PixelFormat?
    private let onKeyEvent: (UInt32, Bool) -> Void
    private static let maxCutText = 1 << 20

    /// The test pattern: eight vertical colour bars, as on a TV test card.
    static let bars: [(UInt8, UInt8, UInt8)] = [
        (255, 255, 255), (255, 255, 0), (0, 255, 255), (0, 255, 0),
        (255, 0, 255), (255, 0, 0), (0, 0, 255), (0, 0, 0),
    ]

    init(width: Int, height: Int, name: String, onKeyEvent: @escaping (UInt32, Bool) -> Void = { _, _ in }) {
        self.width = width
        self.height = height
        self.name = name
        self.onKeyEvent = onKeyEvent
    }

    /// The colour of pixel (x, y) of the test pattern.
    static func colour(x: Int, width: Int) -> (UInt8, UInt8, UInt8) {
        Self.bars[min(Self.bars.count - 1, x * Self.bars.count / max(width, 1))]
    }

    /// What the server sends first.
    func greeting() -> ByteBuffer {
        ByteBuffer(string: "RFB 003.008\n")
    }

    /// Consumes viewer bytes and returns what to send back.
    func receive(_ bytes: ByteBuffer) throws(ProtocolError) -> ByteBuffer {
        var bytes = bytes
        self.input.writeBuffer(&bytes)
        var output = ByteBuffer()
        while try self.step(into: &output) {}
        self.input.discardReadBytes()
        return output
    }

    /// Handles one complete message if there is one; false when more bytes are needed.
    private func step(into output: inout ByteBuffer) throws(ProtocolError) -> Bool {
        switch self.phase {
        case .version:
            guard let version = self.input.readString(length: 12) else { return false }
            let minor: Int
            switch version {
            case "RFB 003.008\n": minor = 8
            case "RFB 003.007\n": minor = 7
            case "RFB 003.003\n": minor = 3
            default: throw .unsupportedVersion
            }
            if minor == 3 {
                output.writeInteger(UInt32(1))  // 3.3: the server picks None
                self.phase = .clientInit
            } else {
                output.writeBytes([1, 1])  // one security type: None
                self.phase = .securityChoice(minor: minor)
            }
        case .securityChoice(let minor):
            guard let choice = self.input.readInteger(as: UInt8.self) else { return false }
            guard choice == 1 else { throw .unsupportedSecurityType(choice) }
            if minor == 8 { output.writeInteger(UInt32(0)) }  // SecurityResult OK
            self.phase = .clientInit
        case .clientInit:
            guard self.input.readInteger(as: UInt8.self) != nil else { return false }
            output.writeInteger(UInt16(self.width))
            output.writeInteger(UInt16(self.height))
            Self.write(self.pixelFormat, to: &output)
            output.writeInteger(UInt32(self.name.utf8.count))
            output.writeString(self.name)
            self.phase = .normal
        case .normal:
            return try self.clientMessage(into: &output)
        }
        return true
    }

    private func clientMessage(into output: inout ByteBuffer) throws(ProtocolError) -> Bool {
        guard let type = self.input.getInteger(at: self.input.readerIndex, as: UInt8.self) else { return false }
        let available = self.input.readableBytes
        switch type {
        case 0:  // SetPixelFormat
            guard available >= 20 else { return false }
            self.input.moveReaderIndex(forwardBy: 4)
            let format = Self.readPixelFormat(&self.input)
            guard format.trueColour, [8, 16, 32].contains(format.bitsPerPixel) else { throw .unsupportedPixelFormat }
            self.pixelFormat = format
        case 2:  // SetEncodings
            guard available >= 4, let count = self.input.getInteger(at: self.input.readerIndex + 2, as: UInt16.self),
                  available >= 4 + 4 * Int(count) else { return false }
            self.input.moveReaderIndex(forwardBy: 4 + 4 * Int(count))
        case 3:  // FramebufferUpdateRequest
            guard available >= 10 else { return false }
            self.input.moveReaderIndex(forwardBy: 1)
            let incremental = self.input.readInteger(as: UInt8.self)! != 0
            let x = Int(self.input.readInteger(as: UInt16.self)!), y = Int(self.input.readInteger(as: UInt16.self)!)
            let w = Int(self.input.readInteger(as: UInt16.self)!), h = Int(self.input.readInteger(as: UInt16.self)!)
            if !incremental || self.sentFormat != self.pixelFormat {
                self.writeUpdate(x: x, y: y, width: w, height: h, to: &output)
            }
        case 4:  // KeyEvent
            guard available >= 8 else { return false }
            self.input.moveReaderIndex(forwardBy: 1)
            let down = self.input.readInteger(as: UInt8.self)! != 0
            self.input.moveReaderIndex(forwardBy: 2)
            self.onKeyEvent(self.input.readInteger(as: UInt32.self)!, down)
        case 5:  // PointerEvent
            guard available >= 6 else { return false }
            self.input.moveReaderIndex(forwardBy: 6)
        case 6:  // ClientCutText
            guard available >= 8, let length = self.input.getInteger(at: self.input.readerIndex + 4, as: UInt32.self) else {
                return false
            }
            guard length <= Self.maxCutText else { throw .cutTextTooLong }
            guard available >= 8 + Int(length) else { return false }
            self.input.moveReaderIndex(forwardBy: 8 + Int(length))
        default:
            throw .unknownMessage(type)
        }
        return true
    }

    /// One rectangle in raw encoding, clipped to the framebuffer.
    private func writeUpdate(x: Int, y: Int, width: Int, height: Int, to output: inout ByteBuffer) {
        let x = min(x, self.width), y = min(y, self.height)
        let w = min(width, self.width - x), h = min(height, self.height - y)
        self.sentFormat = self.pixelFormat
        output.writeBytes([0, 0])  // FramebufferUpdate, padding
        output.writeInteger(UInt16(1))
        output.writeInteger(UInt16(x)); output.writeInteger(UInt16(y))
        output.writeInteger(UInt16(w)); output.writeInteger(UInt16(h))
        output.writeInteger(Int32(0))  // raw
        let format = self.pixelFormat
        let bytesPerPixel = Int(format.bitsPerPixel / 8)
        // Every row is the same: encode one and repeat it.
        var row = ByteBuffer()
        row.reserveCapacity(w * bytesPerPixel)
        for column in x..<(x + w) {
            let (r, g, b) = Self.colour(x: column, width: self.width)
            let pixel = (UInt32(r) * UInt32(format.redMax) / 255) << format.redShift
                | (UInt32(g) * UInt32(format.greenMax) / 255) << format.greenShift
                | (UInt32(b) * UInt32(format.blueMax) / 255) << format.blueShift
            let endianness: Endianness = format.bigEndian ? .big : .little
            switch bytesPerPixel {
            case 1: row.writeInteger(UInt8(truncatingIfNeeded: pixel))
            case 2: row.writeInteger(UInt16(truncatingIfNeeded: pixel), endianness: endianness)
            default: row.writeInteger(pixel, endianness: endianness)
            }
        }
        output.reserveCapacity(output.writerIndex + row.readableBytes * h)
        for _ in 0..<h { output.writeImmutableBuffer(row) }
    }

    private static func write(_ format: PixelFormat, to output: inout ByteBuffer) {
        output.writeInteger(format.bitsPerPixel)
        output.writeInteger(format.depth)
        output.writeInteger(UInt8(format.bigEndian ? 1 : 0))
        output.writeInteger(UInt8(format.trueColour ? 1 : 0))
        output.writeInteger(format.redMax); output.writeInteger(format.greenMax); output.writeInteger(format.blueMax)
        output.writeInteger(format.redShift); output.writeInteger(format.greenShift); output.writeInteger(format.blueShift)
        output.writeBytes([0, 0, 0])
    }

    private static func readPixelFormat(_ input: inout ByteBuffer) -> PixelFormat {
        var format = PixelFormat()
        format.bitsPerPixel = input.readInteger()!
        format.depth = input.readInteger()!
        format.bigEndian = input.readInteger(as: UInt8.self)! != 0
        format.trueColour = input.readInteger(as: UInt8.self)! != 0
        format.redMax = input.readInteger()!; format.greenMax = input.readInteger()!; format.blueMax = input.readInteger()!
        format.redShift = input.readInteger()!; format.greenShift = input.readInteger()!; format.blueShift = input.readInteger()!
        input.moveReaderIndex(forwardBy: 3)
        return format
    }
}
