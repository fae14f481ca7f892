/* Writes seed inputs for fuzz_wire (frame sequences as a node receives
 * them) into the directory given as argv[1]: HELLO alone; HELLO, PLAN (the small fuzz
 * model split between device and edge), FRAME, a valid TENSOR header with its data,
 * BYE; and an ERROR. Built with the ordinary compiler by mk/fuzz.mk. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/graph.h"
#include "mecbed/plan.h"
#include "mecbed/topology.h"
#include "mecbed/wire.h"
#include "mecbed/model.h"

#include "fuzz_util.h"

static void frame(mb_wbuf *out, int type, const mb_wbuf *payload)
{
    uint8_t hdr[MB_WIRE_HDR_LEN];
    mb_wire_hdr_encode(hdr, type, payload ? (uint32_t)payload->len : 0, type == MB_MSG_TENSOR ? 1 : 0);
    mb_wbuf_bytes(out, hdr, sizeof hdr);
    if (payload)
        mb_wbuf_bytes(out, payload->p, payload->len);
}

static int save(const char *dir, const char *name, const mb_wbuf *b)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b->p, 1, b->len, f) != b->len || fclose(f)) {
        perror(path);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: wire_seeds DIR\n");
        return 2;
    }
    char err[512];
    mb_graph *g = mb_modelfile_read(FUZZ_MODEL, err, sizeof err);
    mb_topology t;
    if (!g || mb_topology_from_link("rate=10mbit,rtt=20ms", &t, err, sizeof err)) {
        fprintf(stderr, "wire_seeds: %s\n", err);
        return 1;
    }
    mb_hello h = {.proto = MB_WIRE_VERSION, .role = MB_WIRE_ROLE_RUNNER, .site = -1,
                  .graph_hash = mb_graph_hash(g)};
    snprintf(h.model, sizeof h.model, "tiny_net");
    mb_wbuf hb, pb, tb, eb, seq;
    mb_wbuf_init(&hb);
    mb_wbuf_init(&pb);
    mb_wbuf_init(&tb);
    mb_wbuf_init(&eb);
    mb_wbuf_init(&seq);
    mb_hello_encode(&h, &hb);
    frame(&seq, MB_MSG_HELLO, &hb);
    int rc = save(argv[1], "hello", &seq);

    int *site = calloc((size_t)g->n_nodes, sizeof(int));
    int edge = mb_topology_find(&t, "edge0");
    for (int i = g->n_nodes - 2; i < g->n_nodes; i++) /* a late split: a small tensor crosses */
        site[i] = edge;
    mb_plan *p = mb_plan_new("seed", g, mb_topology_find(&t, "device"));
    if (p)
        p->graph_hash = mb_graph_hash(g); /* the node checks it */
    char addrs[MB_MAX_SITES][64] = {{0}};
    for (int s = 0; s < t.n_sites; s++)
        snprintf(addrs[s], sizeof addrs[s], "127.0.0.1:%d", 7000 + s);
    if (!p || mb_plan_assign(p, g, site, err, sizeof err) ||
        mb_wire_plan_encode(p, &t, (const char(*)[64])addrs, edge, 1, 5.0, &pb)) {
        fprintf(stderr, "wire_seeds: plan: %s\n", err);
        return 1;
    }
    frame(&seq, MB_MSG_PLAN, &pb);
    frame(&seq, MB_MSG_FRAME, NULL);
    for (int k = 0; k < p->n_steps; k++) {
        const mb_plan_step *s = &p->steps[k];
        if (s->kind != MB_STEP_SEND || s->to != edge)
            continue;
        mb_tensor_hdr th = {.epoch = 1, .step = (uint32_t)k, .op = s->op, .region = s->region,
                            .dtype = MB_DTYPE_F32};
        th.ndim = mb_region_dims(g, s->op, s->region, th.dims);
        mb_tensor_hdr_encode(&th, &tb);
        int64_t n = 1;
        for (int i = 0; i < th.ndim; i++)
            n *= th.dims[i];
        for (int64_t i = 0; i < n && i < (1 << 22); i++)
            mb_wbuf_u32(&tb, 0);
        frame(&seq, MB_MSG_TENSOR, &tb);
        break;
    }
    frame(&seq, MB_MSG_BYE, NULL);
    rc |= save(argv[1], "session", &seq);
    mb_error_encode(MB_WERR_PROTOCOL, "unexpected frame", &eb);
    seq.len = 0;
    frame(&seq, MB_MSG_HELLO, &hb);
    frame(&seq, MB_MSG_ERROR, &eb);
    rc |= save(argv[1], "error", &seq);
    mb_plan_free(p);
    free(site);
    mb_graph_free(g);
    return rc ? 1 : 0;
}
