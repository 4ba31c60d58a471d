// swift-tools-version:6.0
import PackageDescription

// Data-parallel training over Open MPI: `mpirun -np N envnet-mpi train …`.
//
// A package of its own (as Examples/ and Fuzz/ are), so that the EnvNet package builds and tests
// without MPI installed and apps that import EnvNetModel never link it. It depends on EnvNet by
// path and adds only the MPI transport: EnvNetModel's `Communicator` over MPI_COMM_WORLD.
// Needs libopenmpi-dev and openmpi-bin (`Scripts/install-system-packages --mpi`).
let package = Package(
    name: "EnvNetMPI",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "EnvNetMPI", targets: ["EnvNetMPI"]),
        .executable(name: "envnet-mpi", targets: ["envnet-mpi"]),
    ],
    dependencies: [
        .package(name: "EnvNet", path: ".."),
    ],
    targets: [
        .systemLibrary(
            name: "CMPI",
            pkgConfig: "ompi",
            providers: [.apt(["libopenmpi-dev"])]
        ),
        // The MPI calls, in C: Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT …) are macros that
        // Swift cannot import.
        .target(
            name: "CEnvNetMPI",
            dependencies: ["CMPI"]
        ),
        .target(
            name: "EnvNetMPI",
            dependencies: ["CEnvNetMPI", .product(name: "EnvNetModel", package: "EnvNet")]
        ),
        .executableTarget(
            name: "envnet-mpi",
            dependencies: ["EnvNetMPI", .product(name: "EnvNetModel", package: "EnvNet"), .product(name: "EnvNetCommandLine", package: "EnvNet")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
