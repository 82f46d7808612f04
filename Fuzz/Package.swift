// swift-tools-version:6.0
// Coverage-guided fuzzing of what the proxy reads from strangers: the request path and the token.
// Built with libFuzzer by scripts/fuzz.sh (`swift build --sanitize=fuzzer --sanitize=address`);
// a package of its own, because a fuzzer has no main of its own and would break `swift build` at the root.
import PackageDescription

let package = Package(
    name: "vnc-proxy-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "vnc-proxy", path: ".."),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
    ],
    targets: [
        .executableTarget(name: "FuzzRouter", dependencies: [.product(name: "VNCProxy", package: "vnc-proxy")]),
        .executableTarget(name: "FuzzToken", dependencies: [
            .product(name: "VNCProxy", package: "vnc-proxy"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
