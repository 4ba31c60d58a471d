import ArgumentParser
import EnvNetModel
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A data-parallel job's group, as the training run sees it.
struct Distribution {
    let communicator: any Communicator
    let checksumInterval: Int
    /// Each rank trains whole folds of --cross-validation alone instead of sharing every batch.
    let parallelFolds: Bool
    /// Lifts the time limit of the collectives (for waits that may last as long as a training).
    var removeTimeLimit: () -> Void = {}
}

/// `envnet train` as one member of a data-parallel job: the `train` command of `envnet-mpi`
/// (the `MPI/` package), which supplies the communicator.
struct DistributedTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train EnvNet data-parallel over the ranks of an MPI job (mpirun -np N envnet-mpi train ...).",
        discussion: """
            Takes every option of envnet train. The global batch (--batch-size, 64 by default) is \
            split over the ranks; each rank prepares only its share, BatchNorm uses the statistics \
            of the global batch, gradients are summed, and every rank applies the same step, so N \
            ranks train as one process does with the same seed. Rank 0 prints, writes the run \
            folder and its checkpoints; --resume works with any number of ranks. With \
            --cross-validation --parallel-folds each rank trains whole folds alone instead.

            Every rank needs the dataset at the same path. A collective that does not finish \
            within --collective-timeout seconds (a rank died or hangs) ends the job with a message \
            naming the step.

            Examples:
              mpirun -np 2 envnet-mpi train --data ESC-50 --fold 5 --output runs/esc50-fold5
              mpirun -np 5 envnet-mpi train --data ESC-50 --cross-validation --parallel-folds --output runs/cv
              mpirun --hostfile hosts -np 8 envnet-mpi train --data /shared/UrbanSound8K --output runs/us8k
            """)

    @OptionGroup var train: Train
    @Flag(help: "With --cross-validation: each rank trains whole folds (round robin) instead of sharing every batch.")
    var parallelFolds = false
    @Option(help: "Compare a checksum of the parameters across the ranks every N steps (0: only at checkpoints).")
    var checksumInterval = 50
    @Option(help: "Seconds a collective may take before the job is ended (a rank died or hangs).")
    var collectiveTimeout: Double = 300

    func validate() throws {
        if parallelFolds, !train.crossValidation { throw ValidationError("--parallel-folds needs --cross-validation") }
        try Limits.check(checksumInterval, in: 0...1_000_000, option: "--checksum-interval")
        try Limits.check(collectiveTimeout, in: 1...86_400, option: "--collective-timeout")
    }
}

/// The entry point of `envnet-mpi`: the package that links MPI creates the communicator and
/// hands it here, so that this library needs no MPI.
public enum DistributedCommandLine {
    /// Runs `envnet-mpi train …` with the process's arguments.
    /// - Parameters:
    ///   - communicator: This process's group (MPI_COMM_WORLD).
    ///   - setCollectiveTimeout: Receives --collective-timeout before any collective (and infinity
    ///     where a wait may last as long as a training).
    ///   - abort: Ends the whole job with an exit code (MPI_Abort): a rank that fails alone must
    ///     not leave the others waiting.
    /// - Returns: 0 when the training finished (the caller then finalises MPI and exits).
    public static func main(communicator: any Communicator, setCollectiveTimeout: @escaping (Double) -> Void, abort: (Int32) -> Never) -> Int32 {
        ProcessSupport.lineBufferStandardOutput()
        signal(SIGXFSZ, SIG_IGN)
        if communicator.rank != 0 {
            ProgressReporter.isSilenced = true
            // One rank speaks for the job; the others keep standard error for their own failures.
            let null = open("/dev/null", O_WRONLY)
            if null >= 0 { dup2(null, STDOUT_FILENO); close(null) }
        }
        let prefix = communicator.size > 1 ? "envnet-mpi (rank \(communicator.rank) of \(communicator.size)): " : "envnet-mpi: "
        func fail(_ message: String, code: Int32) -> Never {
            FileHandle.standardError.write(Data((prefix + message + "\n").utf8))
            abort(code)
        }
        do {
            try CommandEnvironment.apply()
        } catch {
            fail("\(error)", code: 64)
        }
        var arguments = Array(CommandLine.arguments.dropFirst())
        guard arguments.first == "train" else {
            if communicator.rank == 0 {
                print("Usage: mpirun -np N envnet-mpi train <envnet train options> [--parallel-folds] [--checksum-interval N] [--collective-timeout S]")
                print("See envnet-mpi train --help.")
            }
            if arguments.isEmpty || ["--help", "-h", "help"].contains(arguments[0]) { return 0 }
            abort(64)
        }
        arguments.removeFirst()
        let command: DistributedTrain
        do {
            command = try DistributedTrain.parse(arguments)
        } catch {
            // Help and usage errors are the same on every rank: rank 0 prints them.
            if communicator.rank == 0 {
                let text = DistributedTrain.fullMessage(for: error)
                if DistributedTrain.exitCode(for: error) == .success { print(text) } else { FileHandle.standardError.write(Data((text + "\n").utf8)) }
            }
            let code = DistributedTrain.exitCode(for: error).rawValue
            if code == 0 { return 0 }
            abort(code)
        }
        setCollectiveTimeout(command.collectiveTimeout)
        do {
            try command.train.run(distribution: Distribution(communicator: communicator, checksumInterval: command.checksumInterval,
                                                             parallelFolds: command.parallelFolds,
                                                             removeTimeLimit: { setCollectiveTimeout(.infinity) }))
        } catch {
            fail("Error: \(error)", code: 1)
        }
        return 0
    }
}
