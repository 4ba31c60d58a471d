// swift-tools-version:6.0
import PackageDescription

// The targets form a stack; each imports only what lies below it:
// COpenBLAS/CEnvNetSupport -> EnvNetTensor (CSndFile -> EnvNetAudio only) -> EnvNetLayers -> EnvNetAudio -> EnvNetModel
// -> EnvNetPretrained (the bundled models), EnvNetCharts (SVG/PNG), EnvNetBenchmarking -> envnet
// Only EnvNetTensor imports OpenBLAS and the kernel module; only EnvNetAudio imports libsndfile.
let package = Package(
    name: "EnvNet",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "EnvNetTensor", targets: ["EnvNetTensor"]),
        .library(name: "EnvNetLayers", targets: ["EnvNetLayers"]),
        .library(name: "EnvNetAudio", targets: ["EnvNetAudio"]),
        .library(name: "EnvNetModel", targets: ["EnvNetModel"]),
        // The models the project trained, as resources: a product of its own, so that apps that
        // import only EnvNetModel do not carry 28 MB of weights.
        .library(name: "EnvNetPretrained", targets: ["EnvNetPretrained"]),
        // Charts of the reports (training curves, confusion matrices, filter responses) as SVG
        // with embedded PNG: apart from the model library, so apps that do not draw carry none of it.
        .library(name: "EnvNetCharts", targets: ["EnvNetCharts"]),
        // The commands of `envnet`, as a library: `envnet-mpi` (the MPI/ package) runs its `train`.
        .library(name: "EnvNetCommandLine", targets: ["EnvNetCommandLine"]),
        .executable(name: "envnet", targets: ["envnet"]),
        .executable(name: "envnet-benchmark", targets: ["EnvNetBenchmark"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]
        ),
        .systemLibrary(
            name: "CSndFile",
            pkgConfig: "sndfile",
            providers: [.apt(["libsndfile1-dev"])]
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
            name: "EnvNetAudio",
            dependencies: ["EnvNetTensor", "CSndFile", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "EnvNetModel",
            dependencies: ["EnvNetLayers", "EnvNetAudio", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "EnvNetPretrained",
            dependencies: ["EnvNetModel"],
            resources: [.copy("Model")]
        ),
        .target(
            name: "EnvNetCharts",
            dependencies: ["EnvNetModel"]
        ),
        // The network benchmark behind `envnet bench`, out of the library apps embed.
        .target(
            name: "EnvNetBenchmarking",
            dependencies: ["EnvNetModel"]
        ),
        .target(
            name: "EnvNetCommandLine",
            dependencies: [
                "EnvNetModel", "EnvNetPretrained", "EnvNetCharts", "EnvNetBenchmarking",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "envnet",
            dependencies: ["EnvNetCommandLine"]
        ),
        .executableTarget(
            name: "EnvNetBenchmark",
            dependencies: [
                "EnvNetTensor", "EnvNetAudio",
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
            name: "EnvNetAudioTests",
            dependencies: ["EnvNetAudio"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "EnvNetCommandLineTests",
            dependencies: ["EnvNetCommandLine"]
        ),
        .testTarget(
            name: "EnvNetPretrainedTests",
            dependencies: ["EnvNetPretrained"]
        ),
        .testTarget(
            name: "EnvNetModelTests",
            dependencies: ["EnvNetModel", "EnvNetCharts"],
            resources: [.copy("Fixtures")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
