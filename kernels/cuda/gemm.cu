/* Gemm and MatMul on the GPU with cuBLAS (fp32, pedantic math: no TF32).
 * mecbed's tensors are row-major and cuBLAS is column-major: a row-major
 * Y[M,N] = A[M,K] B[K,N] is the column-major Y^T = B^T A^T, so every call
 * below passes B before A with m = N, n = M. MatMul's batch dimensions
 * (numpy broadcasting) become one pointer-array batched call. */
#include <stdlib.h>
#include <string.h>

#include "common.cuh"

/* y = y + beta * C[i*cm + j*cn] over an M x N row-major matrix. */
typedef struct k_gemm_bias {
    float *y;
    const float *cb;
    float beta;
    int64_t N, cm, cn;
    __host__ __device__ void operator()(int64_t t) const
    {
        int64_t i = t / N, j = t % N;
        y[t] += beta * cb[i * cm + j * cn];
    }
} k_gemm_bias;

/* ---- GEMM calls (cuBLAS; the harness's column-major reference) -------- */

static inline float col_at(const float *X, cublasOperation_t op, int ld, int r, int c)
{
    return op == CUBLAS_OP_N ? X[r + (int64_t)c * ld] : X[c + (int64_t)r * ld];
}

static void emu_gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const float *A,
                     int lda, const float *B, int ldb, float *C, int ldc)
{
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            float acc = 0.0f;
            for (int p = 0; p < k; p++)
                acc += col_at(A, ta, lda, i, p) * col_at(B, tb, ldb, p, j);
            C[i + (int64_t)j * ldc] = alpha * acc;
        }
}

/* cuBLAS's argument checks that matter here (its documented invalid-value cases). */
static int ld_ok(const mbc_req *q, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, int lda, int ldb,
                 int ldc)
{
    int ra = ta == CUBLAS_OP_N ? m : k, rb = tb == CUBLAS_OP_N ? k : n;
    if (m < 0 || n < 0 || k < 0 || lda < (ra > 1 ? ra : 1) || ldb < (rb > 1 ? rb : 1) || ldc < (m > 1 ? m : 1))
        return mbc_fail(q, "GEMM arguments cuBLAS would refuse: m %d n %d k %d lda %d ldb %d ldc %d", m, n, k, lda, ldb,
                        ldc);
    return 0;
}

int mbc_sgemm_strided(const mbc_req *q, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha,
                      const float *A, int lda, long long sa, const float *B, int ldb, long long sb, float *C, int ldc,
                      long long sc, int batch)
{
    if (ld_ok(q, ta, tb, m, n, k, lda, ldb, ldc))
        return -1;
    if (q->c->emu) {
        for (int b = 0; b < batch; b++)
            emu_gemm(ta, tb, m, n, k, alpha, A + b * sa, lda, B + b * sb, ldb, C + b * sc, ldc);
        return 0;
    }
    float zero = 0.0f;
    if (batch == 1) {
        MBC_BLAS(cublasSgemm(q->c->blas, ta, tb, m, n, k, &alpha, A, lda, B, ldb, &zero, C, ldc));
        return 0;
    }
    MBC_BLAS(cublasSgemmStridedBatched(q->c->blas, ta, tb, m, n, k, &alpha, A, lda, sa, B, ldb, sb, &zero, C, ldc, sc,
                                       batch));
    return 0;
}

int mbc_sgemm_batched(const mbc_req *q, int m, int n, int k, const float *const *A, int lda, const float *const *B,
                      int ldb, float *const *C, int ldc, int batch)
{
    if (ld_ok(q, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, lda, ldb, ldc))
        return -1;
    if (q->c->emu) { /* A, B, C are the (host) pointer tables */
        for (int b = 0; b < batch; b++)
            emu_gemm(CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, 1.0f, A[b], lda, B[b], ldb, C[b], ldc);
        return 0;
    }
    float one = 1.0f, zero = 0.0f;
    MBC_BLAS(cublasSgemmBatched(q->c->blas, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, A, lda, B, ldb, &zero, C, ldc,
                                batch));
    return 0;
}

int mbc_memset0(const mbc_req *q, float *p, size_t bytes)
{
    if (q->c->emu) {
        memset(p, 0, bytes);
        return 0;
    }
    MBC_CHECK(cudaMemsetAsync(p, 0, bytes, q->c->comp));
    return 0;
}

int mbc_copy_d2d(const mbc_req *q, float *dst, const float *src, size_t bytes)
{
    if (q->c->emu) {
        memcpy(dst, src, bytes);
        return 0;
    }
    MBC_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, q->c->comp));
    return 0;
}

static int int_dims(const mbc_req *q, int64_t a, int64_t b, int64_t c)
{
    if (a > 0x7fffffff || b > 0x7fffffff || c > 0x7fffffff)
        return mbc_fail(q, "a matrix dimension exceeds cuBLAS's 32-bit int");
    return 0;
}

int mbc_gemm(const mbc_req *q)
{
    const mb_node *n = q->n;
    const mb_op_attrs *a = &n->a;
    const mb_tensor *A = q->v[0].t;
    const mb_tensor *B = n->n_inputs == 2 ? q->v[1].t : (n->n_params > 0 ? n->params[0] : NULL);
    int cidx = n->n_inputs == 2 ? 0 : 1;
    const mb_tensor *Cb = n->n_params > cidx ? n->params[cidx] : NULL;
    if (!B || A->ndim != 2 || B->ndim != 2)
        return mbc_fail(q, "needs 2-D A and B (B as input 1 or params[0])");
    int64_t M = a->trans_a ? A->dims[1] : A->dims[0], K = a->trans_a ? A->dims[0] : A->dims[1];
    int64_t K2 = a->trans_b ? B->dims[1] : B->dims[0], N = a->trans_b ? B->dims[0] : B->dims[1];
    if (K != K2 || q->out->dims[0] != M || q->out->dims[1] != N)
        return mbc_fail(q, "shapes do not agree: A' is %lldx%lld, B' %lldx%lld", (long long)M, (long long)K,
                        (long long)K2, (long long)N);
    if (int_dims(q, M, N, K))
        return -1;
    int64_t cm = 0, cn = 0, c_rows = 1, c_cols = 1;
    if (Cb) {
        if (Cb->ndim > 2)
            return mbc_fail(q, "bias C has rank %d", Cb->ndim);
        c_cols = Cb->ndim >= 1 ? Cb->dims[Cb->ndim - 1] : 1;
        c_rows = Cb->ndim == 2 ? Cb->dims[0] : 1;
        if ((c_rows != 1 && c_rows != M) || (c_cols != 1 && c_cols != N))
            return mbc_fail(q, "bias C [%lld,%lld] does not broadcast to [%lld,%lld]", (long long)c_rows,
                            (long long)c_cols, (long long)M, (long long)N);
        cm = c_rows == 1 ? 0 : c_cols;
        cn = c_cols == 1 ? 0 : 1;
    }
    const float *dA = q->din[0];
    const float *dB = n->n_inputs == 2 ? q->din[1] : mbc_param(q, B);
    const float *dC = Cb ? mbc_param(q, Cb) : NULL;
    if (!dB || (Cb && !dC))
        return -1;
    /* column-major: Y^T (N x M) = op(B)^T (N x K) * op(A)^T (K x M) */
    cublasOperation_t opB = a->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, opA = a->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    int ldb = (int)(a->trans_b ? K : N), lda = (int)(a->trans_a ? M : K);
    if (M && N) {
        if (K) {
            if (mbc_sgemm_strided(q, opB, opA, (int)N, (int)M, (int)K, a->alpha, dB, ldb, 0, dA, lda, 0, q->dout,
                                  (int)N, 0, 1))
                return -1;
        } else if (mbc_memset0(q, q->dout, sizeof(float) * (size_t)(M * N))) {
            return -1;
        }
    }
    if (Cb && M > 0 && N > 0) {
        k_gemm_bias f = {q->dout, dC, a->beta, N, cm, cn};
        return mbc_launch(q, f, M * N);
    }
    return 0;
}

int mbc_matmul(const mbc_req *q)
{
    const mb_node *n = q->n;
    const mb_tensor *A = q->v[0].t;
    const mb_tensor *B = n->n_inputs == 2 ? q->v[1].t : (n->n_params > 0 ? n->params[0] : NULL);
    if (!B || A->ndim < 1 || B->ndim < 1)
        return mbc_fail(q, "needs two operands (input 1 or params[0])");
    int ra = A->ndim, rb = B->ndim;
    int64_t M = ra == 1 ? 1 : A->dims[ra - 2], K = A->dims[ra - 1];
    int64_t K2 = rb == 1 ? B->dims[0] : B->dims[rb - 2], N = rb == 1 ? 1 : B->dims[rb - 1];
    if (K != K2)
        return mbc_fail(q, "inner dimensions differ: %lld vs %lld", (long long)K, (long long)K2);
    if (int_dims(q, M, N, K))
        return -1;
    int nba = ra > 2 ? ra - 2 : 0, nbb = rb > 2 ? rb - 2 : 0;
    int nb = n->out_ndim - (ra > 1) - (rb > 1);
    if (nb < 0 || nb < nba || nb < nbb)
        return mbc_fail(q, "output rank %d does not fit the operands", n->out_ndim);
    int64_t sa[MB_MAX_DIMS], sb[MB_MAX_DIMS], bdims[MB_MAX_DIMS], nbatch = 1, stra = 1, strb = 1;
    for (int d = nb - 1; d >= 0; d--) {
        bdims[d] = n->out_dims[d];
        nbatch *= bdims[d];
        int ja = d - (nb - nba), jb = d - (nb - nbb);
        int64_t da = ja >= 0 ? A->dims[ja] : 1, db = jb >= 0 ? B->dims[jb] : 1;
        if ((da != 1 && da != bdims[d]) || (db != 1 && db != bdims[d]))
            return mbc_fail(q, "batch dimension %d does not broadcast", d);
        sa[d] = da == 1 ? 0 : stra;
        sb[d] = db == 1 ? 0 : strb;
        stra *= da;
        strb *= db;
    }
    const float *dA = q->din[0];
    const float *dB = n->n_inputs == 2 ? q->din[1] : mbc_param(q, B);
    if (!dB)
        return -1;
    if (!nbatch || !M || !N)
        return 0;
    if (!K)
        return mbc_memset0(q, q->dout, sizeof(float) * (size_t)(nbatch * M * N));
    if (nbatch == 1)
        return mbc_sgemm_strided(q, CUBLAS_OP_N, CUBLAS_OP_N, (int)N, (int)M, (int)K, 1.0f, dB, (int)N, 0, dA, (int)K,
                                 0, q->dout, (int)N, 0, 1);
    if (nbatch > 0x7fffffff)
        return mbc_fail(q, "%lld batches exceed cuBLAS's 32-bit count", (long long)nbatch);
    /* pointer arrays: [B_0..B_n-1 | A_0.. | Y_0..] */
    const float **ptr = (const float **)malloc(sizeof(float *) * 3 * (size_t)nbatch);
    if (!ptr)
        return mbc_fail(q, "out of memory");
    for (int64_t bi = 0; bi < nbatch; bi++) {
        int64_t rem = bi, ia = 0, ib = 0;
        for (int d = nb - 1; d >= 0; d--) {
            int64_t c = rem % bdims[d];
            rem /= bdims[d];
            ia += c * sa[d];
            ib += c * sb[d];
        }
        ptr[bi] = dB + ib * K * N;
        ptr[nbatch + bi] = dA + ia * M * K;
        ptr[2 * nbatch + bi] = q->dout + bi * M * N;
    }
    const float **dptr = (const float **)mbc_table(q, ptr, sizeof(float *) * 3 * (size_t)nbatch);
    free(ptr);
    if (!dptr)
        return -1;
    return mbc_sgemm_batched(q, (int)N, (int)M, (int)K, dptr, (int)N, dptr + nbatch, (int)K,
                             (float *const *)(dptr + 2 * nbatch), (int)N, (int)nbatch);
}
