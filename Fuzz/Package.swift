// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets for the readers of untrusted input. Not part of the main build: build and
// run them with Fuzz/run.sh, which passes -sanitize=fuzzer,address -parse-as-library to every
// module (the readers must be instrumented, not just these harnesses).
let package = Package(
    name: "EnvNetFuzz",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "EnvNet", path: ".."),
    ],
    targets: [
        .executableTarget(
            name: "FuzzWAV",
            dependencies: [.product(name: "EnvNetAudio", package: "EnvNet")]
        ),
        .executableTarget(
            name: "FuzzCSV",
            dependencies: [.product(name: "EnvNetAudio", package: "EnvNet")]
        ),
        .executableTarget(
            name: "FuzzSafeTensors",
            dependencies: [.product(name: "EnvNetModel", package: "EnvNet")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
