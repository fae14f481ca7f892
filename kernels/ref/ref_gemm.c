/* Reference Gemm and MatMul (ONNX semantics). Dot products accumulate in
 * float in increasing k. */
#include "ref_impl.h"

int ref_gemm(const ref_req *q)
{
    const mb_node *n = q->n;
    const mb_op_attrs *a = &n->a;
    const mb_tensor *A = q->v[0].t;
    const mb_tensor *B = n->n_inputs == 2 ? q->v[1].t : (n->n_params > 0 ? n->params[0] : NULL);
    int cidx = n->n_inputs == 2 ? 0 : 1;
    const mb_tensor *Cb = n->n_params > cidx ? n->params[cidx] : NULL;
    if (!B || A->ndim != 2 || B->ndim != 2)
        return ref_fail(q, "needs 2-D A and B (B as input 1 or params[0])");
    int64_t M = a->trans_a ? A->dims[1] : A->dims[0], K = a->trans_a ? A->dims[0] : A->dims[1];
    int64_t K2 = a->trans_b ? B->dims[1] : B->dims[0], N = a->trans_b ? B->dims[0] : B->dims[1];
    if (K != K2 || q->out->dims[0] != M || q->out->dims[1] != N)
        return ref_fail(q, "shapes do not agree: A' is %lldx%lld, B' %lldx%lld", (long long)M, (long long)K,
                        (long long)K2, (long long)N);
    /* C broadcasts to [M, N] (numpy rules, rank <= 2) */
    int64_t cm = 0, cn = 0, c_rows = 1, c_cols = 1;
    if (Cb) {
        if (Cb->ndim > 2)
            return ref_fail(q, "bias C has rank %d", Cb->ndim);
        c_cols = Cb->ndim >= 1 ? Cb->dims[Cb->ndim - 1] : 1;
        c_rows = Cb->ndim == 2 ? Cb->dims[0] : 1;
        if ((c_rows != 1 && c_rows != M) || (c_cols != 1 && c_cols != N))
            return ref_fail(q, "bias C [%lld,%lld] does not broadcast to [%lld,%lld]", (long long)c_rows,
                            (long long)c_cols, (long long)M, (long long)N);
        cm = c_rows == 1 ? 0 : c_cols;
        cn = c_cols == 1 ? 0 : 1;
    }
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            float acc = 0.0f;
            for (int64_t k = 0; k < K; k++) {
                float x = a->trans_a ? A->data[k * M + i] : A->data[i * K + k];
                float w = a->trans_b ? B->data[j * K + k] : B->data[k * N + j];
                acc += x * w;
            }
            float y = a->alpha * acc;
            if (Cb)
                y += a->beta * Cb->data[i * cm + j * cn];
            q->out->data[i * N + j] = y;
        }
    return 0;
}

int ref_matmul(const ref_req *q)
{
    const mb_node *n = q->n;
    const mb_tensor *A = q->v[0].t;
    const mb_tensor *B = n->n_inputs == 2 ? q->v[1].t : (n->n_params > 0 ? n->params[0] : NULL);
    if (!B || A->ndim < 1 || B->ndim < 1)
        return ref_fail(q, "needs two operands (input 1 or params[0])");
    /* numpy: a 1-D A is a row [1,K], a 1-D B a column [K,1]; those dims are
     * dropped from the output, which leaves its memory layout unchanged */
    int ra = A->ndim, rb = B->ndim;
    int64_t M = ra == 1 ? 1 : A->dims[ra - 2], K = A->dims[ra - 1];
    int64_t K2 = rb == 1 ? B->dims[0] : B->dims[rb - 2], N = rb == 1 ? 1 : B->dims[rb - 1];
    if (K != K2)
        return ref_fail(q, "inner dimensions differ: %lld vs %lld", (long long)K, (long long)K2);
    int nba = ra > 2 ? ra - 2 : 0, nbb = rb > 2 ? rb - 2 : 0;
    int nb = n->out_ndim - (ra > 1) - (rb > 1);
    if (nb < 0 || nb < nba || nb < nbb)
        return ref_fail(q, "output rank %d does not fit the operands", n->out_ndim);
    /* batch strides (in matrices) of A and B over the output's batch dims */
    int64_t sa[MB_MAX_DIMS], sb[MB_MAX_DIMS], bdims[MB_MAX_DIMS], nbatch = 1;
    int64_t stra = 1, strb = 1;
    for (int d = nb - 1; d >= 0; d--) {
        bdims[d] = n->out_dims[d];
        nbatch *= bdims[d];
        int ja = d - (nb - nba), jb = d - (nb - nbb);
        int64_t da = ja >= 0 ? A->dims[ja] : 1, db = jb >= 0 ? B->dims[jb] : 1;
        if ((da != 1 && da != bdims[d]) || (db != 1 && db != bdims[d]))
            return ref_fail(q, "batch dimension %d does not broadcast", d);
        sa[d] = da == 1 ? 0 : stra;
        sb[d] = db == 1 ? 0 : strb;
        stra *= da;
        strb *= db;
    }
    for (int64_t bi = 0; bi < nbatch; bi++) {
        int64_t rem = bi, ia = 0, ib = 0;
        for (int d = nb - 1; d >= 0; d--) {
            int64_t c = rem % bdims[d];
            rem /= bdims[d];
            ia += c * sa[d];
            ib += c * sb[d];
        }
        const float *pa = A->data + ia * M * K, *pb = B->data + ib * K * N;
        float *py = q->out->data + bi * M * N;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                float acc = 0.0f;
                for (int64_t k = 0; k < K; k++)
                    acc += pa[i * K + k] * pb[k * N + j];
                py[i * N + j] = acc;
            }
    }
    return 0;
}
