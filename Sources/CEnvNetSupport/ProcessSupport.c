// Process facts and settings the Swift standard library does not reach portably.
#include "CEnvNetSupport.h"

#include <stdio.h>
#include <sys/resource.h>

long long envnet_peak_resident_bytes(void) {
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
    return (long long)usage.ru_maxrss * 1024;  // Linux reports kilobytes
}

void envnet_line_buffer_standard_output(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
}
