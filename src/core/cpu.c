/* cpu.c — CPU count, thread priority and thread names (mmr_cpu.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#endif
#include "mmr_cpu.h"

#include <errno.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

int mmr_cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int mmr_thread_set_nice(int nice) {
    /* the thread id by syscall: glibc declares gettid() only from 2.30 */
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice) == 0 ? 0 : errno;
}

void mmr_thread_set_name(const char *name) {
    prctl(PR_SET_NAME, name, 0, 0, 0); /* only fails for a bad pointer */
}
