/* mmr_cpu.h — how many CPUs this process may run on, for sizing thread pools, a lower
 * CPU priority for background threads, and thread names (top -H, perf, /proc). */
#ifndef MMR_CPU_H
#define MMR_CPU_H

/* CPUs in the calling thread's affinity mask (taskset, cgroup cpusets), else the CPUs
 * online; at least 1. */
int mmr_cpu_count(void);

/* Sets the calling thread's nice value to nice (0..19; Linux nice is per thread), so it
 * yields the CPU to threads at 0 when they compete and runs at full speed otherwise.
 * Returns 0, or an errno value. */
int mmr_thread_set_nice(int nice);

/* Names the calling thread (Linux keeps the first 15 bytes), e.g. "mmr-worker". */
void mmr_thread_set_name(const char *name);

#endif
