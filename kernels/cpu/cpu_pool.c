/* The CPU backend's own worker threads. OpenBLAS runs single-threaded
 * (mb_platform_init) inside these, so parallelism is over output channels,
 * pixel tiles and batches, decided by each kernel. */
#include "cpu_impl.h"

#include <stdlib.h>

struct cpu_pool {
    int n_threads;
    pthread_t *workers;
    pthread_mutex_t mu;
    pthread_cond_t start, done;
    /* the job being run */
    unsigned long generation;
    cpu_task_fn fn;
    void *arg;
    int n_tasks;
    int next_task;  /* under mu */
    int busy;       /* workers still inside the current job */
    int quit;
};

typedef struct worker_arg {
    cpu_pool *p;
    int id;
} worker_arg;

/* Take tasks until none are left. */
static void drain(cpu_pool *p, int thread)
{
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int t = p->next_task < p->n_tasks ? p->next_task++ : -1;
        pthread_mutex_unlock(&p->mu);
        if (t < 0)
            return;
        p->fn(p->arg, t, thread);
    }
}

static void *worker_main(void *v)
{
    worker_arg wa = *(worker_arg *)v;
    free(v);
    cpu_pool *p = wa.p;
    unsigned long seen = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->quit && p->generation == seen)
            pthread_cond_wait(&p->start, &p->mu);
        if (p->quit) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        drain(p, wa.id);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0)
            pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->mu);
    }
}

cpu_pool *cpu_pool_new(int n_threads)
{
    if (n_threads < 1)
        n_threads = 1;
    if (n_threads > CPU_MAX_THREADS)
        n_threads = CPU_MAX_THREADS;
    cpu_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n_threads = n_threads;
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
        p->quit = 1;
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

void cpu_pool_run(cpu_pool *p, int n_tasks, cpu_task_fn fn, void *arg)
{
    if (n_tasks <= 0)
        return;
    if (p->n_threads == 1 || n_tasks == 1) {
        for (int t = 0; t < n_tasks; t++)
            fn(arg, t, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->n_tasks = n_tasks;
    p->next_task = 0;
    p->busy = p->n_threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    drain(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->busy > 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
