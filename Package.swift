// swift-tools-version:6.0
import PackageDescription

// Layering, one-way: LayerFormat (on-disk format, no FUSE) -> LayerFSCore (inode table and
// operations as plain Swift) -> LayerFUSE (the only code that imports libfuse) -> layerfs.
let package = Package(
    name: "layerfs",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "layerfs", targets: ["layerfs"]),
        .library(name: "LayerFormat", targets: ["LayerFormat"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // Linux calls Swift's Glibc module hides behind _GNU_SOURCE (renameat2) or cannot
        // import (variadic syscall), plus the xattr calls.
        .target(name: "CLinux"),
        .systemLibrary(
            name: "CFuse",
            pkgConfig: "fuse3",
            providers: [.apt(["libfuse3-dev"])]
        ),
        .target(
            name: "LayerFormat",
            dependencies: [
                "CLinux",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "LayerFSCore",
            dependencies: [
                "LayerFormat", "CLinux",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "LayerFUSE",
            dependencies: [
                "CFuse", "CLinux", "LayerFSCore",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "layerfs",
            dependencies: [
                "LayerFormat", "LayerFSCore", "LayerFUSE", "CLinux",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The fuzz target over the header, index and legacy region parsers (scripts/fuzz.sh).
        .executableTarget(name: "layerfs-fuzz", dependencies: ["LayerFormat"]),
        .testTarget(name: "LayerFormatTests", dependencies: ["LayerFormat", "CLinux"]),
        .testTarget(
            name: "LayerFSCoreTests",
            dependencies: ["LayerFSCore", "LayerFormat", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(name: "LayerFUSETests", dependencies: ["LayerFUSE", "LayerFSCore", "LayerFormat", "CFuse"]),
    ]
)
