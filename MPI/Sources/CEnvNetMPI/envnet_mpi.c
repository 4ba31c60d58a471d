#include "envnet_mpi.h"

#include <mpi.h>
#include <string.h>

static MPI_Comm gradient_comm = MPI_COMM_NULL;

static MPI_Comm comm_of(int channel) { return channel == 1 && gradient_comm != MPI_COMM_NULL ? gradient_comm : MPI_COMM_WORLD; }

int envnet_mpi_initialize(int *rank, int *size, int *multiple) {
    int provided = MPI_THREAD_SINGLE;
    int code = MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided);
    if (code != MPI_SUCCESS) return code;
    // Errors come back as codes (turned into Swift errors) instead of ending the process.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    *multiple = provided >= MPI_THREAD_MULTIPLE;
    if ((code = MPI_Comm_rank(MPI_COMM_WORLD, rank)) != MPI_SUCCESS) return code;
    if ((code = MPI_Comm_size(MPI_COMM_WORLD, size)) != MPI_SUCCESS) return code;
    if (*multiple) {
        // The gradient thread's collectives run beside the training thread's on a communicator
        // of their own, so the two sequences never interleave.
        if ((code = MPI_Comm_dup(MPI_COMM_WORLD, &gradient_comm)) != MPI_SUCCESS) return code;
        MPI_Comm_set_errhandler(gradient_comm, MPI_ERRORS_RETURN);
    }
    return MPI_SUCCESS;
}

int envnet_mpi_finalize(void) {
    if (gradient_comm != MPI_COMM_NULL) MPI_Comm_free(&gradient_comm);
    return MPI_Finalize();
}

void envnet_mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

void envnet_mpi_error_string(int code, char *text, int capacity) {
    char buffer[MPI_MAX_ERROR_STRING];
    int length = 0;
    if (MPI_Error_string(code, buffer, &length) != MPI_SUCCESS) length = 0;
    buffer[length < MPI_MAX_ERROR_STRING ? length : MPI_MAX_ERROR_STRING - 1] = 0;
    strncpy(text, buffer, (size_t)capacity - 1);
    text[capacity - 1] = 0;
}

// MPI counts are int: larger arrays go in pieces of 2^30 values.
#define PIECE ((int64_t)1 << 30)

int envnet_mpi_allreduce_float(float *values, int64_t count, int channel) {
    for (int64_t start = 0; start < count; start += PIECE) {
        int n = (int)(count - start < PIECE ? count - start : PIECE);
        int code = MPI_Allreduce(MPI_IN_PLACE, values + start, n, MPI_FLOAT, MPI_SUM, comm_of(channel));
        if (code != MPI_SUCCESS) return code;
    }
    return MPI_SUCCESS;
}

int envnet_mpi_allreduce_double(double *values, int64_t count, int channel) {
    for (int64_t start = 0; start < count; start += PIECE) {
        int n = (int)(count - start < PIECE ? count - start : PIECE);
        int code = MPI_Allreduce(MPI_IN_PLACE, values + start, n, MPI_DOUBLE, MPI_SUM, comm_of(channel));
        if (code != MPI_SUCCESS) return code;
    }
    return MPI_SUCCESS;
}

int envnet_mpi_allgather_double(const double *values, double *gathered, int64_t count) {
    if (count > PIECE) return MPI_ERR_COUNT;
    return MPI_Allgather(values, (int)count, MPI_DOUBLE, gathered, (int)count, MPI_DOUBLE, MPI_COMM_WORLD);
}

int envnet_mpi_broadcast_bytes(uint8_t *bytes, int64_t count, int root) {
    for (int64_t start = 0; start < count; start += PIECE) {
        int n = (int)(count - start < PIECE ? count - start : PIECE);
        int code = MPI_Bcast(bytes + start, n, MPI_BYTE, root, MPI_COMM_WORLD);
        if (code != MPI_SUCCESS) return code;
    }
    return MPI_SUCCESS;
}

int envnet_mpi_broadcast_int64(int64_t *value, int root) {
    return MPI_Bcast(value, 1, MPI_INT64_T, root, MPI_COMM_WORLD);
}
