// swift-tools-version:6.0
// The benchmark harness for vnc-proxy: `bash Benchmarks/run.sh` (see Benchmarks/README.md).
// A separate package so the root package's `swift build` and `swift test` never compile it.
import PackageDescription

let package = Package(
    name: "vnc-proxy-benchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "vnc-proxy", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        .executableTarget(
            name: "vncbench",
            dependencies: [
                .product(name: "VNCProxy", package: "vnc-proxy"),
                .product(name: "KubeVirtSimulator", package: "vnc-proxy"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
