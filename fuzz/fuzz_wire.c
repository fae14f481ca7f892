/* libFuzzer harness: the wire protocol's decoders (runtime/wire.c) fed a
 * frame sequence the way a node sees one: header checks with the types its
 * state allows, then HELLO, PLAN (decoded against the small model fuzz/corpus/modelfile/tiny_net.mbm; a
 * decoded plan becomes the current one), TENSOR headers checked against the
 * current plan from every site, ERROR; BYE ends the session. */
#include "fuzz_util.h"

#include "mecbed/graph.h"
#include "mecbed/plan.h"
#include "mecbed/wire.h"
#include "mecbed/model.h"

static mb_graph *g;

enum { ST_HELLO, ST_PLAN, ST_RUN };

static uint32_t allowed_in(int st)
{
    if (st == ST_HELLO)
        return MB_MSG_BIT(MB_MSG_HELLO);
    if (st == ST_PLAN)
        return MB_MSG_BIT(MB_MSG_PLAN) | MB_MSG_BIT(MB_MSG_BYE) | MB_MSG_BIT(MB_MSG_ERROR);
    return MB_MSG_BIT(MB_MSG_PLAN) | MB_MSG_BIT(MB_MSG_FRAME) | MB_MSG_BIT(MB_MSG_TENSOR) |
           MB_MSG_BIT(MB_MSG_BYE) | MB_MSG_BIT(MB_MSG_ERROR);
}

static void check_tensor(const uint8_t *p, size_t len, const mb_wire_plan *wp)
{
    char err[512];
    size_t avail = len;
    if (len > 45) { /* ndim sits after epoch, step, op, region, dtype */
        int nd = p[45];
        if (nd >= 1 && nd <= MB_MAX_DIMS && mb_tensor_hdr_size(nd) < avail)
            avail = mb_tensor_hdr_size(nd);
    }
    for (int from = 0; from < wp->topo.n_sites; from++) {
        mb_tensor_hdr h;
        size_t data_bytes = 0;
        if (mb_tensor_hdr_check(p, avail, (uint32_t)len, wp->plan, g, wp->epoch, from, wp->your_site, &h,
                                &data_bytes, err, sizeof err) == 0) {
            if (avail + data_bytes != len)
                abort(); /* the check promised the payload's size */
        } else {
            fuzz_check_err(err);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    if (!g && !(g = mb_modelfile_read(FUZZ_MODEL, err, sizeof err)))
        abort();
    int st = ST_HELLO;
    mb_wire_plan wp;
    int have_plan = 0;
    size_t pos = 0;
    while (pos + MB_WIRE_HDR_LEN <= size) {
        mb_wire_hdr h;
        uint64_t max_tensor = have_plan ? mb_wire_plan_max_tensor(wp.plan, g) : 0;
        if (mb_wire_hdr_decode(data + pos, allowed_in(st), max_tensor, &h, err, sizeof err)) {
            fuzz_check_err(err);
            break; /* the node sends ERROR and closes */
        }
        pos += MB_WIRE_HDR_LEN;
        size_t len = h.len <= size - pos ? h.len : size - pos; /* a short read ends the session */
        const uint8_t *p = data + pos;
        pos += len;
        if (len < h.len)
            break;
        if (h.type == MB_MSG_HELLO) {
            mb_hello he;
            if (mb_hello_decode(p, len, &he, err, sizeof err)) {
                fuzz_check_err(err);
                break;
            }
            st = ST_PLAN;
        } else if (h.type == MB_MSG_PLAN) {
            mb_wire_plan np;
            if (mb_wire_plan_decode(p, len, g, &np, err, sizeof err)) {
                fuzz_check_err(err);
                break;
            }
            if (have_plan)
                mb_wire_plan_free(&wp);
            wp = np;
            have_plan = 1;
            st = ST_RUN;
        } else if (h.type == MB_MSG_TENSOR) {
            if (have_plan)
                check_tensor(p, len, &wp);
        } else if (h.type == MB_MSG_ERROR) {
            int code;
            char msg[256];
            (void)mb_error_decode(p, len, &code, msg, sizeof msg);
            break;
        } else if (h.type == MB_MSG_BYE) {
            break;
        }
    }
    if (have_plan)
        mb_wire_plan_free(&wp);
    return 0;
}
