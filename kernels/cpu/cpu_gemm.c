/* Gemm (fully connected) and MatMul on the fast CPU backend: OpenBLAS sgemm
 * (sgemv for a single row, the batch-1 fully connected case, which is bound
 * by streaming the weights), split over output columns on our own threads. */
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cpu_impl.h"

/* Columns per task below which splitting does not pay. */
#define GEMM_MIN_COLS 64

typedef struct gemm_job {
    int trans_a, trans_b;
    int64_t M, N, K;
    float alpha, beta; /* beta: 1 when Y was pre-filled with beta*C, else 0 */
    const float *A, *B;
    int64_t lda, ldb;
    float *Y;
    int64_t chunk; /* columns per task */
} gemm_job;

static void gemm_task(void *arg, int t, int thread)
{
    (void)thread;
    gemm_job *j = arg;
    int64_t n0 = (int64_t)t * j->chunk, n1 = n0 + j->chunk < j->N ? n0 + j->chunk : j->N;
    const float *B = j->B + (j->trans_b ? n0 * j->ldb : n0);
    float *Y = j->Y + n0;
    if (j->M == 1) {
        /* y[n0:n1] = alpha * op(B)^T a + beta * y */
        if (j->trans_b)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)(n1 - n0), (int)j->K, j->alpha, B, (int)j->ldb, j->A,
                        j->trans_a ? (int)j->lda : 1, j->beta, Y, 1);
        else
            cblas_sgemv(CblasRowMajor, CblasTrans, (int)j->K, (int)(n1 - n0), j->alpha, B, (int)j->ldb, j->A,
                        j->trans_a ? (int)j->lda : 1, j->beta, Y, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, j->trans_a ? CblasTrans : CblasNoTrans, j->trans_b ? CblasTrans : CblasNoTrans,
                (int)j->M, (int)(n1 - n0), (int)j->K, j->alpha, j->A, (int)j->lda, B, (int)j->ldb, j->beta, Y,
                (int)j->N);
}

static void run_gemm(cpu_ctx *c, gemm_job *j)
{
    int nt = c->n_threads;
    int64_t tasks = nt > 1 ? 2 * nt : 1;
    j->chunk = (j->N + tasks - 1) / tasks;
    if (j->chunk < GEMM_MIN_COLS)
        j->chunk = GEMM_MIN_COLS;
    if (j->chunk > j->N)
        j->chunk = j->N;
    if (j->M == 0 || j->N == 0)
        return;
    if (j->K == 0) { /* empty sum: alpha*0 + (prefilled beta*C) */
        if (j->beta == 0)
            memset(j->Y, 0, sizeof(float) * (size_t)(j->M * j->N));
        return;
    }
    double est = j->M == 1 ? (double)j->N * j->K / 4.0 : (double)j->M * j->N * j->K / 75.0;
    cpu_run(c, (int)((j->N + j->chunk - 1) / j->chunk), gemm_task, j, est);
}

int cpu_gemm(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_tensor *out, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    const mb_node *nd = &g->nodes[node];
    const mb_op_attrs *a = &nd->a;
    const mb_tensor *A = in[0].t;
    const mb_tensor *B = nd->n_inputs == 2 ? in[1].t : nd->params[0];
    int cidx = nd->n_inputs == 2 ? 0 : 1;
    const mb_tensor *C = nd->n_params > cidx ? nd->params[cidx] : NULL;
    gemm_job j = {0};
    j.trans_a = a->trans_a;
    j.trans_b = a->trans_b;
    j.M = out->dims[0];
    j.N = out->dims[1];
    j.K = a->trans_a ? A->dims[0] : A->dims[1];
    j.alpha = a->alpha;
    j.A = A->data;
    j.B = B->data;
    j.lda = A->dims[1];
    j.ldb = B->dims[1];
    j.Y = out->data;
    j.beta = 0;
    if (C && a->beta != 0) {
        /* Y = beta * C broadcast to [M, N] (C may be [N], [1, N], [M, 1], [M, N] or a scalar) */
        int64_t cm = C->ndim >= 2 ? C->dims[C->ndim - 2] : 1, cn = C->ndim >= 1 ? C->dims[C->ndim - 1] : 1;
        for (int64_t m = 0; m < j.M; m++)
            for (int64_t n = 0; n < j.N; n++)
                j.Y[m * j.N + n] = a->beta * C->data[(cm == 1 ? 0 : m) * cn + (cn == 1 ? 0 : n)];
        j.beta = 1;
    }
    run_gemm(c, &j);
    return 0;
}

/* MatMul with numpy semantics: 1-D operands are promoted (and the added
 * dimension dropped again), leading dimensions broadcast. When the right
 * operand has no batch dimensions, the left operand's batches are one tall
 * GEMM. */
int cpu_matmul(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_tensor *out, char *err,
               size_t errlen)
{
    (void)err;
    (void)errlen;
    const mb_node *nd = &g->nodes[node];
    const mb_tensor *A = in[0].t;
    const mb_tensor *B = nd->n_inputs == 2 ? in[1].t : nd->params[0];
    int64_t ad[MB_MAX_DIMS + 1], bd[MB_MAX_DIMS + 1];
    int an = A->ndim, bn = B->ndim;
    memcpy(ad, A->dims, sizeof(int64_t) * (size_t)an);
    memcpy(bd, B->dims, sizeof(int64_t) * (size_t)bn);
    if (an == 1) {
        ad[1] = ad[0];
        ad[0] = 1;
        an = 2;
    }
    if (bn == 1) {
        bd[1] = 1;
        bn = 2;
    }
    int64_t M = ad[an - 2], K = ad[an - 1], N = bd[bn - 1];
    int nb = an - 2 > bn - 2 ? an - 2 : bn - 2; /* batch rank */
    int64_t batch[MB_MAX_DIMS], sa[MB_MAX_DIMS], sb[MB_MAX_DIMS];
    int64_t nbatch = 1, st_a = M * K, st_b = K * N;
    for (int d = nb - 1; d >= 0; d--) {
        int ia = d - (nb - (an - 2)), ib = d - (nb - (bn - 2));
        int64_t da = ia >= 0 ? ad[ia] : 1, db = ib >= 0 ? bd[ib] : 1;
        batch[d] = da > db ? da : db;
        sa[d] = da == 1 ? 0 : st_a;
        sb[d] = db == 1 ? 0 : st_b;
        st_a *= da;
        st_b *= db;
        nbatch *= batch[d];
    }
    gemm_job j = {0};
    j.alpha = 1;
    j.N = N;
    j.K = K;
    j.lda = K;
    j.ldb = N;
    if (bn == 2) {
        /* B shared by every batch: stack the left operand's rows */
        j.M = M * nbatch;
        j.A = A->data;
        j.B = B->data;
        j.Y = out->data;
        run_gemm(c, &j);
        return 0;
    }
    for (int64_t b = 0; b < nbatch; b++) {
        int64_t rem = b, oa = 0, ob = 0;
        for (int d = nb - 1; d >= 0; d--) {
            int64_t i = rem % batch[d];
            rem /= batch[d];
            oa += i * sa[d];
            ob += i * sb[d];
        }
        j.M = M;
        j.A = A->data + oa;
        j.B = B->data + ob;
        j.Y = out->data + b * M * N;
        run_gemm(c, &j);
    }
    return 0;
}
