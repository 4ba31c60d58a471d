import EnvNetCommandLine
import EnvNetMPI
import EnvNetModel
import Foundation

// envnet-mpi train …             data-parallel training (under mpirun)
// envnet-mpi allreduce-benchmark  times the gradient allreduce of the full network (under mpirun)
// envnet-mpi compare A B          the largest relative difference per tensor of two models
// envnet-mpi envnet …             the plain envnet command (one process, no MPI)
let arguments = Array(CommandLine.arguments.dropFirst())

switch arguments.first {
case "envnet":
    EnvNetCommand.runMain(arguments: Array(arguments.dropFirst()))
case "compare":
    exit(ModelComparison.main(Array(arguments.dropFirst())))
case "train", "allreduce-benchmark":
    let communicator: MPICommunicator
    do {
        communicator = try MPICommunicator()
    } catch {
        FileHandle.standardError.write(Data("envnet-mpi: MPI could not start: \(error)\n".utf8))
        exit(69)
    }
    let code = arguments.first == "train"
        ? DistributedCommandLine.main(
            communicator: communicator,
            setCollectiveTimeout: { communicator.collectiveTimeout = $0 },
            abort: { communicator.abort(code: $0) })
        : AllreduceBenchmark.main(Array(arguments.dropFirst()), communicator: communicator)
    communicator.finalize()
    exit(code)
default:
    print("""
        Usage:
          mpirun -np N envnet-mpi train <envnet train options> [--parallel-folds] [--checksum-interval N] [--collective-timeout S]
          mpirun -np N envnet-mpi allreduce-benchmark [--rounds R]
          envnet-mpi compare <model-a.safetensors> <model-b.safetensors> [--tolerance T]
          envnet-mpi envnet <envnet command> ...
        See envnet-mpi train --help and Docs/distributed.md.
        """)
    exit(arguments.isEmpty || ["--help", "-h", "help"].contains(arguments[0]) ? 0 : 64)
}
