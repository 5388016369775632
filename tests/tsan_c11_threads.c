/* tsan_c11_threads.c — C11 <threads.h> on top of pthreads, linked into every executable of
 * the ThreadSanitizer build only (MMREC_TSAN, see CMakeLists.txt). librdkafka uses C11
 * threads; glibc >= 2.34 implements them by calling its internal pthread functions, which
 * GCC 12's libtsan does not intercept: a thread made by thrd_create has no TSan state (the
 * first malloc in it crashes) and mtx_/cnd_ synchronisation is invisible, so every hand-off
 * through a librdkafka queue would be a false race. These definitions interpose glibc's
 * (the executable's symbols come first) and go through the intercepted pthread calls.
 * Not a general C11 threads library: only what librdkafka imports (nm -D librdkafka.so). */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

/* glibc's mapping of pthread error codes to thrd_* results. */
static int tsan_c11_result(int err) {
    switch (err) {
    case 0: return thrd_success;
    case ENOMEM: return thrd_nomem;
    case EBUSY: return thrd_busy;
    case ETIMEDOUT: return thrd_timedout;
    default: return thrd_error;
    }
}

typedef struct tsan_c11_start {
    thrd_start_t func;
    void *arg;
} tsan_c11_start_t;

/* The C11 start routine returns int; thrd_join reads it back from the pthread result. */
static void *tsan_c11_trampoline(void *p) {
    tsan_c11_start_t s = *(tsan_c11_start_t *)p;
    free(p);
    return (void *)(intptr_t)s.func(s.arg);
}

int thrd_create(thrd_t *thr, thrd_start_t func, void *arg) {
    tsan_c11_start_t *s = malloc(sizeof *s);
    if (!s) return thrd_nomem;
    *s = (tsan_c11_start_t){func, arg};
    int err = pthread_create(thr, NULL, tsan_c11_trampoline, s);
    if (err) free(s);
    return err == EAGAIN ? thrd_nomem : tsan_c11_result(err);
}

int thrd_join(thrd_t thr, int *res) {
    void *r;
    int err = pthread_join(thr, &r);
    if (!err && res) *res = (int)(intptr_t)r;
    return tsan_c11_result(err);
}

/* mtx_t, cnd_t and once_flag have the size and layout of their pthread counterparts in glibc. */
int mtx_init(mtx_t *m, int type) {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, (type & mtx_recursive) ? PTHREAD_MUTEX_RECURSIVE : PTHREAD_MUTEX_NORMAL);
    int err = pthread_mutex_init((pthread_mutex_t *)m, &attr);
    pthread_mutexattr_destroy(&attr);
    return tsan_c11_result(err);
}

int mtx_lock(mtx_t *m) { return tsan_c11_result(pthread_mutex_lock((pthread_mutex_t *)m)); }
int mtx_unlock(mtx_t *m) { return tsan_c11_result(pthread_mutex_unlock((pthread_mutex_t *)m)); }
void mtx_destroy(mtx_t *m) { pthread_mutex_destroy((pthread_mutex_t *)m); }

int cnd_init(cnd_t *c) { return tsan_c11_result(pthread_cond_init((pthread_cond_t *)c, NULL)); }
int cnd_signal(cnd_t *c) { return tsan_c11_result(pthread_cond_signal((pthread_cond_t *)c)); }
int cnd_broadcast(cnd_t *c) { return tsan_c11_result(pthread_cond_broadcast((pthread_cond_t *)c)); }
void cnd_destroy(cnd_t *c) { pthread_cond_destroy((pthread_cond_t *)c); }

int cnd_wait(cnd_t *c, mtx_t *m) {
    return tsan_c11_result(pthread_cond_wait((pthread_cond_t *)c, (pthread_mutex_t *)m));
}

int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m, const struct timespec *restrict ts) {
    return tsan_c11_result(pthread_cond_timedwait((pthread_cond_t *)c, (pthread_mutex_t *)m, ts));
}

void call_once(once_flag *flag, void (*func)(void)) { pthread_once((pthread_once_t *)flag, func); }
