// swift-tools-version:6.0
import PackageDescription

// The targets form a stack; each imports only what lies below it:
// COpenBLAS/CEnvNetSupport -> EnvNetTensor -> EnvNetLayers -> EnvNetAudio -> EnvNetModel -> envnet
let package = Package(
    name: "EnvNet",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "EnvNetTensor", targets: ["EnvNetTensor"]),
        .library(name: "EnvNetLayers", targets: ["EnvNetLayers"]),
        .library(name: "EnvNetModel", targets: ["EnvNetModel"]),
        .executable(name: "envnet-benchmark", targets: ["EnvNetBenchmark"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]
        ),
        .target(
            name: "CEnvNetSupport",
            dependencies: ["COpenBLAS"]
        ),
        .target(
            name: "EnvNetTensor",
            dependencies: ["COpenBLAS", "CEnvNetSupport"]
        ),
        .target(
            name: "EnvNetLayers",
            dependencies: ["EnvNetTensor"]
        ),
        .target(
            name: "EnvNetModel",
            dependencies: ["EnvNetLayers"]
        ),
        .executableTarget(
            name: "EnvNetBenchmark",
            dependencies: [
                "EnvNetTensor",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "EnvNetTensorTests",
            dependencies: ["EnvNetTensor"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "EnvNetLayersTests",
            dependencies: ["EnvNetLayers"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "EnvNetModelTests",
            dependencies: ["EnvNetModel"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
