// OpenBLAS's CBLAS interface (openblas_set_num_threads, openblas_get_corename, cblas_*)
// and the LAPACKE C interface to LAPACK. Debian: libopenblas-dev, liblapacke-dev.
#include <cblas.h>
#include <lapacke.h>
