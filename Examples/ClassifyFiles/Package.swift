// swift-tools-version:6.0
import PackageDescription

// An app that embeds EnvNet: it depends on the EnvNet package (here by path; use the
// repository's URL in your own package) and imports only the `EnvNetModel` product.
let package = Package(
    name: "ClassifyFiles",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "EnvNet", path: "../.."),
    ],
    targets: [
        .executableTarget(
            name: "ClassifyFiles",
            dependencies: [.product(name: "EnvNetModel", package: "EnvNet")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
