#ifndef ENVNET_MPI_H
#define ENVNET_MPI_H

#include <stdint.h>

/// Every function returns an MPI error code (0 is success); envnet_mpi_error_string describes one.

/// MPI_Init_thread asking for MPI_THREAD_MULTIPLE; sets MPI_ERRORS_RETURN on MPI_COMM_WORLD and
/// duplicates it for the gradient thread. `provided` receives 1 when MULTIPLE was granted.
int envnet_mpi_initialize(int *rank, int *size, int *multiple);
int envnet_mpi_finalize(void);
/// MPI_Abort on MPI_COMM_WORLD.
void envnet_mpi_abort(int code);
void envnet_mpi_error_string(int code, char *text, int capacity);

/// In-place sums; `channel` 0 is MPI_COMM_WORLD, 1 its duplicate for gradients.
int envnet_mpi_allreduce_float(float *values, int64_t count, int channel);
int envnet_mpi_allreduce_double(double *values, int64_t count, int channel);
/// `count` values of every rank, in rank order, into `gathered` (size * count).
int envnet_mpi_allgather_double(const double *values, double *gathered, int64_t count);
int envnet_mpi_broadcast_bytes(uint8_t *bytes, int64_t count, int root);
int envnet_mpi_broadcast_int64(int64_t *value, int root);

#endif
