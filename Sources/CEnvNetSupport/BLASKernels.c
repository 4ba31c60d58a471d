// Which OpenBLAS kernels run, and what the CPU has: the one place the library looks at CPUID.
#include "CEnvNetSupport.h"

#include <cblas.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

// OpenBLAS internals of DYNAMIC_ARCH builds. Declared weak so that the library still links
// and runs against a BLAS without them (then nothing is switched).
extern void gotoblas_dynamic_init(void) __attribute__((weak));
extern void gotoblas_dynamic_quit(void) __attribute__((weak));

int envnet_cpu_has_avx512(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

static int switched = 0;
static pthread_once_t selection_once = PTHREAD_ONCE_INIT;

static void select_once(void) {
    const char *forced = getenv("OPENBLAS_CORETYPE");
    if (forced != NULL && forced[0] != '\0') return;  // the user's choice wins
    if (!envnet_cpu_has_avx512()) return;
    if (gotoblas_dynamic_init == NULL || gotoblas_dynamic_quit == NULL) return;
    const char *name = openblas_get_corename();
    if (name == NULL) return;
    if (strcmp(name, "SkylakeX") == 0 || strcmp(name, "Cooperlake") == 0 ||
        strcmp(name, "SapphireRapids") == 0) return;  // already an AVX-512 family
    // OpenBLAS reads OPENBLAS_CORETYPE in its dynamic initialisation; re-run it with the
    // variable set, then restore the environment so child processes see what the user set.
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
    unsetenv("OPENBLAS_CORETYPE");
    const char *now = openblas_get_corename();
    switched = (now != NULL && strcmp(now, "SkylakeX") == 0);
}

int envnet_select_blas_kernels(void) {
    pthread_once(&selection_once, select_once);
    return switched;
}

const char *envnet_blas_core_name(void) {
    const char *name = openblas_get_corename();
    return name != NULL ? name : "unknown";
}
