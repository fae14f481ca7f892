/* The CPU backend's own worker threads. OpenBLAS runs single-threaded
 * (mb_platform_init) inside these, so parallelism is over output channels,
 * pixel tiles and batches, decided by each kernel.
 *
 * Waking a thread blocked on a condition variable (a futex wake, then the
 * scheduler, and on a VM the hypervisor bringing back an idle vCPU) took
 * from tens of microseconds to over a millisecond, often longer than a task:
 * the caller had taken most tasks by the time the worker arrived. So a
 * worker that finishes a job spins on the job counter for a while
 * (MECBED_CPU_SPIN_US, default 1000 us, 0: sleep at once) before it sleeps;
 * tasks are claimed with an atomic counter; the caller spins as long for the
 * workers' last tasks before it sleeps. Only sleeping threads are woken.
 * Measured on 2 threads (2-core VM, load < 1): MobileNetV2's op sum 8.4 ->
 * 5.8 ms, DenseNet-121 48 -> 39 ms; with 200 us some runs still found the
 * worker asleep after a stretch of small single-threaded ops (wall 1.3x the
 * op sum), with 500-2000 us none did. The price: a worker burns up to
 * 1 ms of CPU after each inference.
 *
 * Tasks are claimed in chunks (cpu_pool_run_chunked; cpu_run sizes them to
 * about 4 us of work): a claim moves the counter's cache line between the
 * cores, which cost more than a 150 ns pooling plane. Each thread starts on
 * its own contiguous share of the tasks, counted on its own line, and then
 * helps with the others' (drain_affine; MECBED_CPU_POOL_AFFINE=0: one
 * shared counter). */
#include "cpu_impl.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define POOL_PAUSE() _mm_pause()
#else
#define POOL_PAUSE() ((void)0)
#endif

#define POOL_SPIN_US_DEFAULT 1000

/* The fields each thread writes (the task counter, the busy count) sit on
 * cache lines of their own, away from the job description every task
 * reads: on one shared line, each claim by one core invalidated the other
 * core's copy of fn/arg/n_tasks, a cache miss per task on top of the
 * counter's own. MECBED_CPU_POOL_CHUNK=0 restores both for A/B: one task
 * per claim, counted on the job's line, the job re-read per task. */
#define POOL_LINE 64
struct cpu_pool {
    int n_threads;
    pthread_t *workers;
    pthread_mutex_t mu;
    pthread_cond_t start, done;
    double spin_ns;
    int chunk_on; /* MECBED_CPU_POOL_CHUNK: 0 claims one task at a time */
    int sleeping; /* under mu: workers blocked on start */
    int waiting;  /* under mu: the caller is blocked on done */
    int quit;     /* atomic; set under mu */
    /* the job being run: written by the caller before it bumps generation */
    _Alignas(POOL_LINE) unsigned long generation; /* atomic; changed under mu */
    cpu_task_fn fn;
    void *arg;
    int n_tasks;
    int chunk; /* tasks per claim */
    int next_task_shared; /* atomic: the counter as it was, on the job's line (MECBED_CPU_POOL_CHUNK=0) */
    int affine;                        /* MECBED_CPU_POOL_AFFINE: per-thread ranges (see drain_affine) */
    _Alignas(POOL_LINE) int next_task; /* atomic */
    _Alignas(POOL_LINE) int busy;      /* atomic: workers still inside the current job */
    char pad_end[POOL_LINE - sizeof(int)];
    /* drain_affine: thread k's range [k n / T, (k+1) n / T), its next task */
    struct {
        _Alignas(POOL_LINE) int next; /* atomic */
        int end;
    } range[CPU_MAX_THREADS];
};

typedef struct worker_arg {
    cpu_pool *p;
    int id;
} worker_arg;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Spin until *v != old (returns 1) or about spin_ns have passed (0). */
static int spin_while_eq_ul(const unsigned long *v, unsigned long old, double spin_ns, const int *quit)
{
    if (spin_ns <= 0)
        return __atomic_load_n(v, __ATOMIC_ACQUIRE) != old;
    double t_end = -1;
    for (int k = 0;; k++) {
        if (__atomic_load_n(v, __ATOMIC_ACQUIRE) != old || __atomic_load_n(quit, __ATOMIC_RELAXED))
            return 1;
        POOL_PAUSE();
        if ((k & 63) == 63) {
            double t = now_ns();
            if (t_end < 0)
                t_end = t + spin_ns;
            else if (t >= t_end)
                return 0;
        }
    }
}

/* Claim chunks of range r until it is used up; 0 when it was already. */
static int drain_range(cpu_pool *p, int r, int thread, cpu_task_fn fn, void *arg, int chunk)
{
    const int end = p->range[r].end;
    int did = 0;
    for (;;) {
        int t = __atomic_fetch_add(&p->range[r].next, chunk, __ATOMIC_RELAXED);
        if (t >= end)
            return did;
        did = 1;
        int t1 = t + chunk < end ? t + chunk : end;
        for (; t < t1; t++)
            fn(arg, t, thread);
    }
}

/* Each thread first takes its own contiguous share of the tasks (counted on
 * a line of its own: no counter traffic between the cores while both
 * work), then helps with the others' remainders. Consecutive memory-bound
 * ops that split a tensor the same way (Concat then BatchNorm in
 * DenseNet) thus tend to find their share in their own core's cache. */
static void drain_affine(cpu_pool *p, int thread)
{
    cpu_task_fn fn = p->fn;
    void *arg = p->arg;
    const int chunk = p->chunk, T = p->n_threads;
    drain_range(p, thread, thread, fn, arg, chunk);
    for (int k = 1; k < T; k++)
        drain_range(p, (thread + k) % T, thread, fn, arg, chunk);
}

/* Take tasks, chunk at a time, until none are left. The job is read once
 * into locals: the counter's line is the only one the threads share while
 * they work. */
static void drain(cpu_pool *p, int thread)
{
    if (p->affine) {
        drain_affine(p, thread);
        return;
    }
    if (!p->chunk_on) {
        for (;;) {
            int t = __atomic_fetch_add(&p->next_task_shared, 1, __ATOMIC_RELAXED);
            if (t >= p->n_tasks)
                return;
            p->fn(p->arg, t, thread);
        }
    }
    cpu_task_fn fn = p->fn;
    void *arg = p->arg;
    const int n = p->n_tasks, chunk = p->chunk;
    for (;;) {
        int t = __atomic_fetch_add(&p->next_task, chunk, __ATOMIC_RELAXED);
        if (t >= n)
            return;
        int t1 = t + chunk < n ? t + chunk : n;
        for (; t < t1; t++)
            fn(arg, t, thread);
    }
}

static void *worker_main(void *v)
{
    worker_arg wa = *(worker_arg *)v;
    free(v);
    cpu_pool *p = wa.p;
    unsigned long seen = 0;
    for (;;) {
        if (!spin_while_eq_ul(&p->generation, seen, p->spin_ns, &p->quit)) {
            pthread_mutex_lock(&p->mu);
            while (!p->quit && __atomic_load_n(&p->generation, __ATOMIC_ACQUIRE) == seen) {
                p->sleeping++;
                pthread_cond_wait(&p->start, &p->mu);
                p->sleeping--;
            }
            pthread_mutex_unlock(&p->mu);
        }
        if (__atomic_load_n(&p->quit, __ATOMIC_ACQUIRE))
            return NULL;
        seen = __atomic_load_n(&p->generation, __ATOMIC_ACQUIRE);
        drain(p, wa.id);
        if (__atomic_sub_fetch(&p->busy, 1, __ATOMIC_ACQ_REL) == 0) {
            pthread_mutex_lock(&p->mu);
            if (p->waiting)
                pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

cpu_pool *cpu_pool_new(int n_threads)
{
    if (n_threads < 1)
        n_threads = 1;
    if (n_threads > CPU_MAX_THREADS)
        n_threads = CPU_MAX_THREADS;
    cpu_pool *p = aligned_alloc(POOL_LINE, (sizeof(cpu_pool) + POOL_LINE - 1) / POOL_LINE * POOL_LINE);
    if (!p)
        return NULL;
    memset(p, 0, sizeof *p);
    p->n_threads = n_threads;
    p->spin_ns = POOL_SPIN_US_DEFAULT * 1e3;
    const char *e = getenv("MECBED_CPU_SPIN_US");
    if (e && *e) {
        char *end;
        double us = strtod(e, &end);
        if (*end == 0 && us >= 0)
            p->spin_ns = us * 1e3;
    }
    p->affine = 1;
    e = getenv("MECBED_CPU_POOL_AFFINE");
    if (e && !strcmp(e, "0"))
        p->affine = 0;
    p->chunk_on = 1;
    e = getenv("MECBED_CPU_POOL_CHUNK");
    if (e && !strcmp(e, "0"))
        p->chunk_on = p->affine = 0;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start, NULL);
    pthread_cond_init(&p->done, NULL);
    if (n_threads > 1) {
        p->workers = calloc((size_t)n_threads - 1, sizeof *p->workers);
        if (!p->workers) {
            cpu_pool_free(p);
            return NULL;
        }
        for (int i = 1; i < n_threads; i++) {
            worker_arg *wa = malloc(sizeof *wa);
            if (wa) {
                wa->p = p;
                wa->id = i;
            }
            if (!wa || pthread_create(&p->workers[i - 1], NULL, worker_main, wa)) {
                free(wa);
                p->n_threads = i; /* only the ones started */
                cpu_pool_free(p);
                return NULL;
            }
        }
    }
    return p;
}

void cpu_pool_free(cpu_pool *p)
{
    if (!p)
        return;
    if (p->workers) {
        pthread_mutex_lock(&p->mu);
        __atomic_store_n(&p->quit, 1, __ATOMIC_RELEASE);
        pthread_cond_broadcast(&p->start);
        pthread_mutex_unlock(&p->mu);
        for (int i = 1; i < p->n_threads; i++)
            pthread_join(p->workers[i - 1], NULL);
        free(p->workers);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->start);
    pthread_cond_destroy(&p->done);
    free(p);
}

int cpu_pool_threads(const cpu_pool *p)
{
    return p->n_threads;
}

int cpu_pool_affine(const cpu_pool *p)
{
    return p->affine;
}

int cpu_pool_awake(const cpu_pool *p)
{
    /* a racy read is enough for a heuristic: a worker that falls asleep
     * right after is woken by the job as usual */
    return p->n_threads > 1 && __atomic_load_n(&p->sleeping, __ATOMIC_RELAXED) == 0;
}

void cpu_pool_run(cpu_pool *p, int n_tasks, cpu_task_fn fn, void *arg)
{
    cpu_pool_run_chunked(p, n_tasks, 1, fn, arg);
}

void cpu_pool_run_chunked(cpu_pool *p, int n_tasks, int chunk, cpu_task_fn fn, void *arg)
{
    if (n_tasks <= 0)
        return;
    if (p->n_threads == 1 || n_tasks == 1) {
        for (int t = 0; t < n_tasks; t++)
            fn(arg, t, 0);
        return;
    }
    p->chunk = p->chunk_on && chunk > 1 ? chunk : 1;
    p->fn = fn;
    p->arg = arg;
    p->n_tasks = n_tasks;
    __atomic_store_n(&p->next_task, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&p->next_task_shared, 0, __ATOMIC_RELAXED);
    if (p->affine)
        for (int k = 0; k < p->n_threads; k++) {
            __atomic_store_n(&p->range[k].next, (int)((int64_t)n_tasks * k / p->n_threads), __ATOMIC_RELAXED);
            p->range[k].end = (int)((int64_t)n_tasks * (k + 1) / p->n_threads);
        }
    __atomic_store_n(&p->busy, p->n_threads - 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(&p->mu);
    /* release: the job's fields above are visible to a worker that sees it */
    __atomic_add_fetch(&p->generation, 1, __ATOMIC_RELEASE);
    if (p->sleeping)
        pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    drain(p, 0);
    /* the workers' last tasks: spin a while, then sleep */
    int busy_done = 0;
    if (p->spin_ns > 0) {
        double t_end = -1;
        for (int k = 0;; k++) {
            if (__atomic_load_n(&p->busy, __ATOMIC_ACQUIRE) == 0) {
                busy_done = 1;
                break;
            }
            POOL_PAUSE();
            if ((k & 63) == 63) {
                double t = now_ns();
                if (t_end < 0)
                    t_end = t + p->spin_ns;
                else if (t >= t_end)
                    break;
            }
        }
    }
    if (!busy_done) {
        pthread_mutex_lock(&p->mu);
        p->waiting = 1;
        while (__atomic_load_n(&p->busy, __ATOMIC_ACQUIRE) > 0)
            pthread_cond_wait(&p->done, &p->mu);
        p->waiting = 0;
        pthread_mutex_unlock(&p->mu);
    }
}
