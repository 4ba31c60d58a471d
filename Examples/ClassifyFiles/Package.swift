// swift-tools-version:6.0
import PackageDescription

// An app that embeds EnvNet: it depends on the EnvNet package (here by path; use the
// repository's URL in your own package) and imports the `EnvNetModel` product, plus
// `EnvNetPretrained` for the bundled ESC-10 model (leave it out to ship only your own models).
let package = Package(
    name: "ClassifyFiles",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "EnvNet", path: "../.."),
    ],
    targets: [
        .executableTarget(
            name: "ClassifyFiles",
            dependencies: [
                .product(name: "EnvNetModel", package: "EnvNet"),
                .product(name: "EnvNetPretrained", package: "EnvNet"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
