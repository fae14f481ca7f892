/* Decoders and generation (docs/generation.md): the zoo's decoders against
 * their published sizes; KV-cache decoding against recomputing the whole
 * sequence without a cache (tokens and the cache itself), for GPT-2's and
 * Llama's architecture (grouped-query attention, rotary embeddings); the
 * cpu backend against the reference; the ONNX round trip of a decode graph
 * with its explicit KV cache; bad arguments. Tiny configurations keep it fast. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mecbed/backend.h"
#include "mecbed/decoder.h"
#include "mecbed/cost.h"
#include "mecbed/exec.h"
#include "mecbed/generate.h"
#include "mecbed/genplan.h"
#include "mecbed/nodetype.h"
#include "mecbed/plan.h"
#include "mecbed/profile.h"
#include "mecbed/topology.h"
#include "mecbed/model.h"
#include "mecbed/onnx.h"
#include "mecbed/zoo.h"

static const mb_decoder_cfg tiny_gpt2 = {"tiny_gpt2", MB_DEC_GPT2, 97, 32, 2, 4, 4, 64, 64, 1e-5f, 0, 1, 0};
static const mb_decoder_cfg tiny_llama = {"tiny_llama", MB_DEC_LLAMA, 101, 48, 3, 6, 2, 80, 64, 1e-5f, 10000.0f, 0, 0};

static void free_tensors(mb_tensor **t, int n)
{
    for (int i = 0; t && i < n; i++)
        mb_tensor_free(t[i]);
    free(t);
}

static void test_published_sizes(void **state)
{
    (void)state;
    const char *const *names = mb_decoder_names();
    int n = 0;
    for (; names[n]; n++) {
        char err[512];
        mb_graph *g = mb_zoo_build_structure(names[n], err, sizeof err);
        if (!g)
            fail_msg("%s: %s", names[n], err);
        const mb_decoder_cfg *c = mb_decoder_find(names[n]);
        assert_non_null(c);
        double p = (double)mb_graph_params(g);
        print_message("%-14s %8.3f M params (published %8.3f M), %d nodes\n", names[n], p / 1e6,
                      c->published_params / 1e6, g->n_nodes);
        if (c->published_params > 0 && fabs(p - c->published_params) > 0.02 * c->published_params)
            fail_msg("%s: %.0f params, published %.0f", names[n], p, c->published_params);
        /* names are unique (weights are shared by name) */
        for (int i = 0; i < g->n_nodes; i++)
            assert_int_equal(mb_graph_find(g, g->nodes[i].name), i);
        assert_int_equal(g->n_outputs, 1 + 2 * c->layers);
        mb_graph_free(g);
    }
    assert_int_equal(n, 5);
    assert_ptr_equal(mb_decoder_find("GPT-2"), mb_decoder_find("gpt2"));
    assert_int_equal(mb_decoder_find("gpt2_draft")->vocab, mb_decoder_find("gpt2")->vocab); /* a draft for gpt2 */
    assert_int_equal(mb_decoder_find("smollm_draft")->vocab, mb_decoder_find("smollm_135m")->vocab);
    assert_null(mb_decoder_find("gpt5"));
}

/* Run a prefill graph (no cache) on seq[0..T): the greedy next token and, in
 * cache (if non-NULL), its present tensors. */
static int64_t full_recompute(const mb_decoder_cfg *c, const mb_graph *weights, mb_backend *be, const int64_t *seq,
                              int T, int64_t C, mb_tensor ***cache)
{
    char err[512];
    mb_graph *g = mb_decoder_build(c, T, C, 0, 0, 1, err, sizeof err);
    if (!g)
        fail_msg("%s", err);
    assert_true(mb_decoder_share_weights(g, weights, err, sizeof err) > 0);
    int64_t d = T;
    mb_tensor *in[2] = {mb_tensor_new(1, &d), mb_tensor_new(1, &d)};
    for (int i = 0; i < T; i++) {
        in[0]->data[i] = (float)seq[i];
        in[1]->data[i] = (float)i;
    }
    mb_tensor **o = NULL;
    if (mb_exec_run(g, be, in, &o, NULL, NULL, err, sizeof err))
        fail_msg("%s", err);
    int64_t tok = (int64_t)o[0]->data[0];
    if (cache)
        *cache = o;
    else
        free_tensors(o, g->n_outputs);
    mb_tensor_free(in[0]);
    mb_tensor_free(in[1]);
    mb_graph_free(g);
    return tok;
}

/* Generation with the cache equals recomputing the whole sequence at every step. */
static void check_cache_equals_recompute(const mb_decoder_cfg *c)
{
    char err[512];
    mb_backend *be = mb_backend_new("cpu", 1, err, sizeof err);
    assert_non_null(be);
    const int P = 5, N = 7;
    mb_gen_model *m = mb_gen_model_new(c, P + N - 1, 7, err, sizeof err);
    if (!m)
        fail_msg("%s", err);
    int64_t *prompt = mb_gen_prompt(c->vocab, P, 3);
    mb_gen_result r;
    if (mb_generate(m, be, prompt, P, N, &r, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(r.n_tokens, N);
    int64_t seq[64];
    memcpy(seq, prompt, sizeof(int64_t) * (size_t)P);
    int distinct = 0;
    for (int i = 0; i < N; i++) {
        int64_t want = full_recompute(c, m->decode, be, seq, P + i, m->capacity, NULL);
        if (want != r.tokens[i])
            fail_msg("%s: token %d is %lld with the cache, %lld recomputed", c->name, i, (long long)r.tokens[i],
                     (long long)want);
        distinct += i == 0 || r.tokens[i] != r.tokens[i - 1];
        seq[P + i] = r.tokens[i];
    }
    print_message("%s: %d tokens identical with and without the cache (%d changes of token)\n", c->name, N, distinct);
    assert_true(r.tpot_median_ms > 0 && r.ttft_ms > 0 && r.weight_bytes > 0 && r.kv_bytes > 0);
    mb_gen_result_free(&r);
    free(prompt);
    mb_gen_model_free(m);
    mb_backend_free(be);
}

static void test_cache_gpt2(void **state)
{
    (void)state;
    check_cache_equals_recompute(&tiny_gpt2);
}

static void test_cache_llama(void **state)
{
    (void)state;
    check_cache_equals_recompute(&tiny_llama);
}

/* One decode step after a prefill writes the same keys and values, at the
 * same slots, as a prefill over the longer sequence; the cpu backend
 * computes what the reference does. */
static void check_decode_step(const mb_decoder_cfg *c)
{
    char err[512];
    const int P = 4;
    const int64_t C = 8;
    mb_backend *ref = mb_backend_new("ref", 1, err, sizeof err), *cpu = mb_backend_new("cpu", 1, err, sizeof err);
    assert_non_null(ref);
    assert_non_null(cpu);
    mb_graph *dg = mb_decoder_build(c, 1, C, 1, 11, 0, err, sizeof err);
    if (!dg)
        fail_msg("%s", err);
    int64_t seq[8] = {3, 17, 42, 91, 0};
    mb_tensor **pre = NULL, **longer = NULL;
    seq[P] = full_recompute(c, dg, cpu, seq, P, C, &pre);
    full_recompute(c, dg, cpu, seq, P + 1, C, &longer);
    int n_in = 2 + 2 * (int)c->layers;
    mb_tensor **in = calloc((size_t)n_in, sizeof *in);
    int64_t one = 1;
    in[0] = mb_tensor_new(1, &one);
    in[1] = mb_tensor_new(1, &one);
    in[0]->data[0] = (float)seq[P];
    in[1]->data[0] = (float)P;
    for (int k = 2; k < n_in; k++)
        in[k] = pre[k - 1];
    mb_tensor **o_cpu = NULL, **o_ref = NULL;
    assert_int_equal(mb_exec_run(dg, cpu, in, &o_cpu, NULL, NULL, err, sizeof err), 0);
    assert_int_equal(mb_exec_run(dg, ref, in, &o_ref, NULL, NULL, err, sizeof err), 0);
    for (int k = 1; k < dg->n_outputs; k++) {
        assert_true(mb_tensor_max_abs_diff(o_cpu[k], o_ref[k]) < 1e-5);
        /* slots 0..P hold positions 0..P in both; the rest stay zero */
        const mb_tensor *a = o_cpu[k], *b = longer[k];
        int key = k % 2 == 1; /* keys [Hkv, dh, C], values [Hkv, C, dh] */
        double worst = 0;
        for (int64_t i = 0; i < mb_tensor_numel(a); i++) {
            int64_t slot = key ? i % C : (i / a->dims[2]) % C;
            double want = slot <= P ? b->data[i] : 0.0;
            worst = fmax(worst, fabs(a->data[i] - want));
        }
        if (worst > 1e-4)
            fail_msg("present output %d differs from the longer prefill's by %g", k, worst);
    }
    assert_float_equal(o_cpu[0]->data[0], o_ref[0]->data[0], 0);
    free_tensors(o_cpu, dg->n_outputs);
    free_tensors(o_ref, dg->n_outputs);
    mb_tensor_free(in[0]);
    mb_tensor_free(in[1]);
    free(in);
    free_tensors(pre, dg->n_outputs);
    free_tensors(longer, dg->n_outputs);
    mb_graph_free(dg);
    mb_backend_free(ref);
    mb_backend_free(cpu);
}

static void test_decode_step_cache(void **state)
{
    (void)state;
    check_decode_step(&tiny_gpt2);
    check_decode_step(&tiny_llama);
}

/* The decode graph with its explicit KV cache survives ONNX export and import. */
static void test_onnx_roundtrip(void **state)
{
    (void)state;
    char err[1024], path[] = "/tmp/mecbed-test-decoder-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    mb_backend *be = mb_backend_new("cpu", 1, err, sizeof err);
    for (int a = 0; a < 2; a++) {
        const mb_decoder_cfg *c = a ? &tiny_llama : &tiny_gpt2;
        mb_graph *g = mb_decoder_build(c, 1, 8, 1, 5, 0, err, sizeof err);
        assert_non_null(g);
        if (mb_onnx_save(g, path, err, sizeof err))
            fail_msg("export %s: %s", c->name, err);
        mb_graph *h = mb_onnx_load(path, err, sizeof err);
        if (!h)
            fail_msg("import %s: %s", c->name, err);
        assert_int_equal(h->n_outputs, g->n_outputs);
        mb_tensor **in = mb_exec_make_inputs(g, 3);
        int n_in = 0;
        for (int i = 0; i < g->n_nodes; i++)
            n_in += g->nodes[i].type == MB_OP_INPUT;
        in[0]->data[0] = 5; /* a token id and a position inside the cache */
        in[1]->data[0] = 2;
        mb_tensor **o1 = NULL, **o2 = NULL;
        if (mb_exec_run(g, be, in, &o1, NULL, NULL, err, sizeof err) ||
            mb_exec_run(h, be, in, &o2, NULL, NULL, err, sizeof err))
            fail_msg("run %s: %s", c->name, err);
        for (int k = 0; k < g->n_outputs; k++)
            if (mb_tensor_max_abs_diff(o1[k], o2[k]) > 1e-6)
                fail_msg("%s output %d differs after the ONNX round trip", c->name, k);
        free_tensors(o1, g->n_outputs);
        free_tensors(o2, g->n_outputs);
        free_tensors(in, n_in);
        mb_graph_free(g);
        mb_graph_free(h);
    }
    unlink(path);
    mb_backend_free(be);
}

/* A decode step of 3 tokens (speculative decoding's verification, the
 * zoo's NAME:verify=3) gives the token after each position that three
 * single-token steps give, and leaves the cache they leave. */
static void check_verify_step(const mb_decoder_cfg *c)
{
    char err[512];
    const int P = 3, V = 3;
    const int64_t C = 8;
    mb_backend *cpu = mb_backend_new("cpu", 1, err, sizeof err);
    mb_graph *dg = mb_decoder_build(c, 1, C, 1, 11, 0, err, sizeof err);
    mb_graph *vg = dg ? mb_decoder_build(c, V, C, 1, 11, 0, err, sizeof err) : NULL;
    if (!cpu || !vg)
        fail_msg("%s", err);
    int64_t seq[8] = {3, 17, 42, 91, 7, 55};
    mb_tensor **pre = NULL;
    full_recompute(c, dg, cpu, seq, P, C, &pre);
    int n_in = 2 + 2 * (int)c->layers;
    mb_tensor **cache = calloc((size_t)n_in, sizeof *cache), **in = calloc((size_t)n_in, sizeof *in), **o = NULL;
    for (int k = 2; k < n_in; k++)
        cache[k] = mb_tensor_clone(pre[k - 1]);
    int64_t one = 1, v = V, seq_tok[3];
    for (int i = 0; i < V; i++) { /* three single-token steps */
        in[0] = mb_tensor_new(1, &one);
        in[1] = mb_tensor_new(1, &one);
        in[0]->data[0] = (float)seq[P + i];
        in[1]->data[0] = (float)(P + i);
        for (int k = 2; k < n_in; k++)
            in[k] = cache[k];
        assert_int_equal(mb_exec_run(dg, cpu, in, &o, NULL, NULL, err, sizeof err), 0);
        seq_tok[i] = (int64_t)o[0]->data[0];
        for (int k = 2; k < n_in; k++) {
            mb_tensor_free(cache[k]);
            cache[k] = o[k - 1];
        }
        mb_tensor_free(o[0]);
        free(o);
        mb_tensor_free(in[0]);
        mb_tensor_free(in[1]);
    }
    in[0] = mb_tensor_new(1, &v); /* one step of three tokens from the prefill's cache */
    in[1] = mb_tensor_new(1, &v);
    for (int i = 0; i < V; i++) {
        in[0]->data[i] = (float)seq[P + i];
        in[1]->data[i] = (float)(P + i);
    }
    for (int k = 2; k < n_in; k++)
        in[k] = pre[k - 1];
    assert_int_equal(mb_exec_run(vg, cpu, in, &o, NULL, NULL, err, sizeof err), 0);
    assert_int_equal(mb_tensor_numel(o[0]), V);
    for (int i = 0; i < V; i++)
        assert_int_equal((int64_t)o[0]->data[i], seq_tok[i]);
    for (int k = 2; k < n_in; k++)
        if (mb_tensor_max_abs_diff(o[k - 1], cache[k]) > 1e-5)
            fail_msg("%s: present output %d after the 3-token step differs from 3 steps' by %g", c->name, k - 1,
                     mb_tensor_max_abs_diff(o[k - 1], cache[k]));
    free_tensors(o, vg->n_outputs);
    for (int k = 2; k < n_in; k++)
        mb_tensor_free(cache[k]);
    mb_tensor_free(in[0]);
    mb_tensor_free(in[1]);
    free(in);
    free(cache);
    free_tensors(pre, dg->n_outputs);
    mb_graph_free(vg);
    mb_graph_free(dg);
    mb_backend_free(cpu);
}

static void test_verify_step(void **state)
{
    (void)state;
    check_verify_step(&tiny_gpt2);
    check_verify_step(&tiny_llama);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    char err[512];
    assert_null(mb_decoder_build(&tiny_gpt2, 1, 65, 1, 1, 1, err, sizeof err));
    assert_non_null(strstr(err, "exceeds the positions"));
    mb_decoder_cfg bad = tiny_llama;
    bad.kv_heads = 4; /* does not divide 6 heads */
    assert_null(mb_decoder_build(&bad, 1, 8, 1, 1, 1, err, sizeof err));
    assert_non_null(strstr(err, "bad configuration"));

    mb_backend *be = mb_backend_new("cpu", 1, err, sizeof err);
    mb_gen_model *m = mb_gen_model_new(&tiny_gpt2, 6, 1, err, sizeof err);
    assert_non_null(m);
    int64_t prompt[4] = {1, 2, 3, 4};
    mb_gen_result r;
    assert_int_equal(mb_generate(m, be, prompt, 4, 4, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "capacity"));
    prompt[2] = 97;
    assert_int_equal(mb_generate(m, be, prompt, 4, 2, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "outside the vocabulary"));
    /* weights of another model cannot be shared */
    mb_graph *other = mb_decoder_build(&tiny_llama, 1, 6, 1, 1, 1, err, sizeof err);
    mb_graph *pg = mb_decoder_build(&tiny_gpt2, 2, 6, 0, 1, 1, err, sizeof err);
    assert_int_equal(mb_decoder_share_weights(pg, other, err, sizeof err), -1);
    assert_non_null(strstr(err, "no weights of the same shape"));
    mb_graph_free(other);
    mb_graph_free(pg);
    mb_gen_model_free(m);
    mb_backend_free(be);
}

/* A split run (every step a plan across device and edge) generates the
 * tokens of the unsplit run, for every cut. */
static void test_split_generation(void **state)
{
    (void)state;
    char err[512];
    const mb_decoder_cfg *c = &tiny_llama;
    mb_topology t;
    assert_int_equal(mb_topology_from_link("rate=50mbit,rtt=20ms", &t, err, sizeof err), 0);
    mb_backend *be = mb_backend_new("cpu", 1, err, sizeof err);
    mb_gen_model *m = mb_gen_model_new(c, 10, 9, err, sizeof err);
    assert_non_null(m);
    int64_t *prompt = mb_gen_prompt(c->vocab, 5, 4);
    mb_gen_result ref, got;
    assert_int_equal(mb_generate(m, be, prompt, 5, 6, &ref, err, sizeof err), 0);
    int dev = mb_topology_find(&t, "device"), edge = mb_topology_find(&t, "edge0");
    for (int k = 0; k <= c->layers; k++) {
        int ls[8];
        for (int l = 0; l < c->layers; l++)
            ls[l] = l < k ? dev : edge;
        mb_gen_split sp = {&t, ls, dev};
        if (mb_generate_split(m, be, &sp, prompt, 5, 6, &got, err, sizeof err))
            fail_msg("split after %d: %s", k, err);
        assert_int_equal(got.n_tokens, ref.n_tokens);
        assert_memory_equal(got.tokens, ref.tokens, sizeof(int64_t) * (size_t)ref.n_tokens);
        mb_gen_result_free(&got);
    }
    int bad[3] = {dev, dev, 7}; /* no such site */
    mb_gen_split sp = {&t, bad, dev};
    assert_int_equal(mb_generate_split(m, be, &sp, prompt, 5, 6, &got, err, sizeof err), -1);
    mb_gen_result_free(&ref);
    free(prompt);
    mb_gen_model_free(m);
    mb_backend_free(be);
}

typedef struct pipe_fixture {
    mb_gen_model *m;
    mb_graph *pg;
    mb_profile *pp, *dp;
    mb_nodetype_set types;
} pipe_fixture;

static void pipe_preds(pipe_fixture *f, const char *link, double mem, mb_gen_split_pred *out, int *best)
{
    char err[512];
    mb_topology t;
    assert_int_equal(mb_topology_from_link(link, &t, err, sizeof err), 0);
    mb_cost_model *pc = mb_cost_new(f->pg, &t, f->pp, &f->types, NULL, err, sizeof err);
    mb_cost_model *dc = mb_cost_new(f->m->decode, &t, f->dp, &f->types, NULL, err, sizeof err);
    assert_non_null(pc);
    assert_non_null(dc);
    int L = (int)f->m->cfg->layers, dev = mb_topology_find(&t, "device"), edge = mb_topology_find(&t, "edge0");
    *best = mb_gen_pipeline_plan(f->pg, pc, f->m->decode, dc, L, dev, edge, 8, mem, out, err, sizeof err);
    if (*best >= 0) {
        /* a step's time is its compute plus one transfer each way */
        for (int k = 0; k <= L; k++) {
            const mb_gen_step_pred *s = &out[k].decode;
            double x = (s->up_bytes ? mb_cost_xfer_ms(dc, dev, edge, s->up_bytes) : 0) +
                       (s->down_bytes ? mb_cost_xfer_ms(dc, edge, dev, s->down_bytes) : 0);
            assert_float_equal(s->ms, s->compute_ms + x, 1e-9 * s->ms);
            assert_true((k == L) == (s->up_bytes == 0 && s->down_bytes == 0));
            assert_float_equal(out[k].total_ms, out[k].prefill.ms + 7 * s->ms, 1e-9 * out[k].total_ms);
            if (k < L) /* the token (4 bytes) comes back */
                assert_int_equal(s->down_bytes, 4);
        }
    }
    mb_cost_free(pc);
    mb_cost_free(dc);
}

/* EdgeShard's cut: the least total time; all on the device when the round
 * trip is long; kept within the device's memory. */
static void test_pipeline_plan(void **state)
{
    (void)state;
    char err[512];
    pipe_fixture f;
    memset(&f, 0, sizeof f);
    assert_int_equal(mb_nodetypes_load_default(&f.types, err, sizeof err), 0);
    f.m = mb_gen_model_new(&tiny_llama, 12, 2, err, sizeof err);
    assert_non_null(f.m);
    f.pg = mb_decoder_build(&tiny_llama, 5, 12, 0, 0, 1, err, sizeof err);
    assert_true(mb_decoder_share_weights(f.pg, f.m->decode, err, sizeof err) > 0);
    f.pp = mb_profile_measure(f.pg, "cpu", 1, 1, err, sizeof err);
    f.dp = mb_profile_measure(f.m->decode, "cpu", 1, 1, err, sizeof err);
    assert_non_null(f.pp);
    assert_non_null(f.dp);
    int L = (int)tiny_llama.layers, best;
    mb_gen_split_pred out[8];
    pipe_preds(&f, "rate=100mbit,rtt=10ms", 0, out, &best);
    assert_true(best >= 0 && best <= L);
    for (int k = 0; k <= L; k++)
        assert_true(out[best].total_ms <= out[k].total_ms);
    pipe_preds(&f, "rate=1mbit,rtt=5000ms", 0, out, &best);
    assert_int_equal(best, L); /* a 5 s round trip per token: stay on the device */
    double all = out[L].device_weight_bytes;
    pipe_preds(&f, "rate=1mbit,rtt=5000ms", all - 1, out, &best);
    assert_true(best < L); /* the device cannot hold every layer */
    assert_true(out[best].device_weight_bytes <= all - 1);
    pipe_preds(&f, "rate=1mbit,rtt=5000ms", 1000, out, &best); /* not even the embedding */
    assert_int_equal(best, -1);
    mb_profile_free(f.pp);
    mb_profile_free(f.dp);
    mb_graph_free(f.pg);
    mb_gen_model_free(f.m);
}


/* ---- the other generation policies (docs/generation.md, "Policies") ---- */

static const mb_decoder_cfg tiny_gpt2_draft = {"tiny_gpt2_draft", MB_DEC_GPT2, 97, 16, 1, 2, 2, 32, 64, 1e-5f, 0, 1, 0};

/* Galaxy: every step a plan of head and column regions across K edge
 * nodes generates the unsplit model's tokens; a partition that leaves a
 * head to nobody is refused. */
static void check_galaxy(const mb_decoder_cfg *c, int K)
{
    char err[512];
    mb_topology t;
    assert_int_equal(mb_gen_topology("rate=50mbit,rtt=20ms", K, NULL, &t, err, sizeof err), 0);
    assert_int_equal(t.n_sites, K + 1);
    mb_backend *be = mb_backend_new("cpu", 1, err, sizeof err);
    mb_gen_model *m = mb_gen_model_new(c, 12, 5, err, sizeof err);
    assert_non_null(m);
    int64_t *prompt = mb_gen_prompt(c->vocab, 5, 3);
    mb_gen_result ref, got;
    assert_int_equal(mb_generate(m, be, prompt, 5, 8, &ref, err, sizeof err), 0);
    int sites[4];
    double speed[4] = {1, 2, 1, 1};
    for (int w = 0; w < K; w++)
        sites[w] = 1 + w;
    mb_gen_tp tp;
    assert_int_equal(mb_gen_tp_partition(c, K, sites, speed, &tp, err, sizeof err), 0);
    assert_int_equal(tp.kv0[K], c->kv_heads);
    assert_int_equal(tp.f0[K], c->ffn);
    mb_plan *pl = mb_gen_galaxy_plan(m->decode, &t, &tp, 0, err, sizeof err);
    if (!pl)
        fail_msg("%s K=%d: %s", c->name, K, err);
    int used[8] = {0};
    for (int i = 0; i < pl->n_steps; i++)
        if (pl->steps[i].kind == MB_STEP_COMPUTE)
            used[pl->steps[i].site] = 1;
    for (int w = 0; w < K; w++)
        assert_true(used[sites[w]]); /* every worker computes */
    /* broken: a worker's piece of an attention projection left out */
    mb_plan *cut = mb_plan_clone(pl);
    int q = mb_graph_find(m->decode, "layers.1.attn.q_proj");
    int j = 0;
    for (int i = 0; i < cut->n_steps; i++) {
        const mb_plan_step *st = &cut->steps[i];
        if (!(st->kind == MB_STEP_COMPUTE && st->op == q && st->site == sites[K - 1]))
            cut->steps[j++] = *st;
    }
    cut->n_steps = j;
    assert_true(cut->n_steps < pl->n_steps);
    assert_int_equal(mb_plan_validate(cut, m->decode, &t, err, sizeof err), -1);
    print_message("a plan without a piece: %s\n", err);
    mb_plan_free(cut);
    mb_plan_free(pl);
    if (mb_generate_galaxy(m, be, &t, &tp, 0, prompt, 5, 8, &got, err, sizeof err))
        fail_msg("%s K=%d: %s", c->name, K, err);
    assert_int_equal(got.n_tokens, ref.n_tokens);
    assert_memory_equal(got.tokens, ref.tokens, sizeof(int64_t) * (size_t)ref.n_tokens);
    mb_gen_result_free(&got);
    /* broken: the last KV head belongs to no worker */
    tp.kv0[K] -= 1;
    assert_int_equal(mb_generate_galaxy(m, be, &t, &tp, 0, prompt, 5, 8, &got, err, sizeof err), -1);
    print_message("broken galaxy split: %s\n", err);
    mb_gen_result_free(&ref);
    free(prompt);
    mb_gen_model_free(m);
    mb_backend_free(be);
}

static void test_galaxy_generation(void **state)
{
    (void)state;
    check_galaxy(&tiny_gpt2, 2);
    check_galaxy(&tiny_gpt2, 3);
    check_galaxy(&tiny_llama, 2); /* grouped-query attention */
}

/* P/D-Device: prefill and decode on separate executors, the prompt's cache
 * copied across; a transfer missing the last prompt position changes the
 * tokens. */
static void test_pd_generation(void **state)
{
    (void)state;
    char err[512];
    const mb_decoder_cfg *cs[2] = {&tiny_gpt2, &tiny_llama};
    mb_backend *a = mb_backend_new("cpu", 1, err, sizeof err), *b = mb_backend_new("ref", 1, err, sizeof err);
    mb_backend *b2 = mb_backend_new("cpu", 1, err, sizeof err);
    assert_non_null(a);
    assert_non_null(b);
    for (int i = 0; i < 2; i++) {
        mb_gen_model *m = mb_gen_model_new(cs[i], 14, 7, err, sizeof err);
        int64_t *prompt = mb_gen_prompt(cs[i]->vocab, 6, 2);
        mb_gen_result ref, got;
        assert_int_equal(mb_generate(m, a, prompt, 6, 8, &ref, err, sizeof err), 0);
        if (mb_generate_pd(m, a, b2, prompt, 6, 8, 6, &got, err, sizeof err))
            fail_msg("%s: %s", cs[i]->name, err);
        assert_memory_equal(got.tokens, ref.tokens, sizeof(int64_t) * 8);
        assert_int_equal(got.kv_bytes, mb_gen_kv_bytes(cs[i], 6));
        mb_gen_result_free(&got);
        assert_int_equal(mb_generate_pd(m, a, b2, prompt, 6, 8, 5, &got, err, sizeof err), 0);
        assert_memory_not_equal(got.tokens, ref.tokens, sizeof(int64_t) * 8);
        mb_gen_result_free(&got);
        mb_gen_result_free(&ref);
        free(prompt);
        mb_gen_model_free(m);
    }
    mb_backend_free(a);
    mb_backend_free(b);
    mb_backend_free(b2);
}

/* Speculative decoding: the real draft and target, the fixed acceptance
 * pattern: the target's greedy tokens exactly, the pattern's acceptances
 * (at least); trusting the draft unverified is caught. */
static void test_speculative_generation(void **state)
{
    (void)state;
    char err[512];
    mb_backend *be = mb_backend_new("cpu", 1, err, sizeof err);
    int P = 4, N = 12, k = 3;
    mb_gen_model *tg = mb_gen_model_new(&tiny_gpt2, P + N - 1 + k, 5, err, sizeof err);
    mb_gen_model *dr = mb_gen_model_new(&tiny_gpt2_draft, P + N - 1 + k, 6, err, sizeof err);
    assert_non_null(tg);
    assert_non_null(dr);
    int64_t *prompt = mb_gen_prompt(97, P, 1);
    mb_gen_result ref, got;
    assert_int_equal(mb_generate(tg, be, prompt, P, N, &ref, err, sizeof err), 0);
    double as[3] = {0, 0.6, 1};
    for (int i = 0; i < 3; i++) {
        mb_gen_spec_opts o = {k, as[i], ref.tokens, 0};
        mb_gen_spec_stats st;
        if (mb_generate_speculative(tg, dr, be, be, prompt, P, N, &o, &got, &st, err, sizeof err))
            fail_msg("a=%g: %s", as[i], err);
        assert_memory_equal(got.tokens, ref.tokens, sizeof(int64_t) * (size_t)N);
        assert_true(st.accepted >= st.forced);
        assert_int_equal(st.proposed, k * st.rounds);
        if (as[i] == 1)
            assert_true(st.rounds <= (N - 1 + k) / (k + 1) + 1);
        if (as[i] == 0)
            assert_int_equal(st.forced, 0);
        print_message("a=%.1f: %d rounds, %d of %d proposals accepted (%d by the pattern)\n", as[i], st.rounds,
                      st.accepted, st.proposed, st.forced);
        mb_gen_result_free(&got);
    }
    mb_gen_spec_opts bad = {k, 0.8, ref.tokens, 1};
    mb_gen_spec_stats st;
    assert_int_equal(mb_generate_speculative(tg, dr, be, be, prompt, P, N, &bad, &got, &st, err, sizeof err), 0);
    assert_memory_not_equal(got.tokens, ref.tokens, sizeof(int64_t) * (size_t)N);
    mb_gen_result_free(&got);
    mb_gen_spec_opts o = {k, 0.5, ref.tokens, 0};
    mb_gen_model *small = mb_gen_model_new(&tiny_gpt2_draft, P + N - 1, 6, err, sizeof err);
    assert_int_equal(mb_generate_speculative(tg, small, be, be, prompt, P, N, &o, &got, &st, err, sizeof err), -1);
    assert_non_null(strstr(err, "caches"));
    mb_gen_model *other = mb_gen_model_new(&tiny_llama, P + N - 1 + k, 6, err, sizeof err);
    assert_int_equal(mb_generate_speculative(tg, other, be, be, prompt, P, N, &o, &got, &st, err, sizeof err), -1);
    assert_non_null(strstr(err, "vocabularies"));
    mb_gen_model_free(small);
    mb_gen_model_free(other);
    mb_gen_result_free(&ref);
    free(prompt);
    mb_gen_model_free(tg);
    mb_gen_model_free(dr);
    mb_backend_free(be);
}

/* The predictors' arithmetic on known numbers. */
static void test_policy_predictions(void **state)
{
    (void)state;
    assert_float_equal(mb_gen_spec_tokens_per_round(0.8, 4), (1 - pow(0.8, 5)) / 0.2, 1e-12);
    assert_float_equal(mb_gen_spec_tokens_per_round(0.6, 2), 1 + 0.6 + 0.36, 1e-12);
    assert_float_equal(mb_gen_spec_tokens_per_round(1, 4), 5, 0);
    assert_float_equal(mb_gen_spec_tokens_per_round(0, 4), 1, 0);
    assert_int_equal(mb_gen_kv_bytes(&tiny_llama, 10), 2 * 3 * 2 * 8 * 10 * 4);
    char err[512];
    pipe_fixture f;
    memset(&f, 0, sizeof f);
    assert_int_equal(mb_nodetypes_load_default(&f.types, err, sizeof err), 0);
    f.m = mb_gen_model_new(&tiny_gpt2, 12, 2, err, sizeof err);
    f.pg = mb_decoder_build(&tiny_gpt2, 5, 12, 0, 0, 1, err, sizeof err);
    assert_true(mb_decoder_share_weights(f.pg, f.m->decode, err, sizeof err) > 0);
    f.pp = mb_profile_measure(f.pg, "cpu", 1, 1, err, sizeof err);
    f.dp = mb_profile_measure(f.m->decode, "cpu", 1, 1, err, sizeof err);
    mb_topology t;
    assert_int_equal(mb_gen_topology("rate=8mbit,rtt=100ms", 2, "rate=80mbit,delay=1ms", &t, err, sizeof err), 0);
    mb_cost_model *pc = mb_cost_new(f.pg, &t, f.pp, &f.types, NULL, err, sizeof err);
    mb_cost_model *dc = mb_cost_new(f.m->decode, &t, f.dp, &f.types, NULL, err, sizeof err);
    assert_non_null(pc);
    assert_non_null(dc);
    /* P/D: TTFT = prompt up + prefill on edge0 + (token + cache) down; TPOT = the device's decode step */
    mb_gen_policy_pred pd;
    int64_t kv = mb_gen_kv_bytes(&tiny_gpt2, 5);
    assert_int_equal(mb_gen_pd_predict(f.pg, pc, f.m->decode, dc, kv, 0, 1, 8, &pd, err, sizeof err), 0);
    double pre = 0, dec = 0;
    for (int v = 0; v < f.pg->n_nodes; v++)
        if (f.pg->nodes[v].type != MB_OP_INPUT && f.pg->nodes[v].type != MB_OP_CONSTANT)
            pre += mb_cost_op_ms(pc, 1, v);
    for (int v = 0; v < f.m->decode->n_nodes; v++)
        if (f.m->decode->nodes[v].type != MB_OP_INPUT && f.m->decode->nodes[v].type != MB_OP_CONSTANT)
            dec += mb_cost_op_ms(dc, 0, v);
    double up = mb_cost_xfer_ms(pc, 0, 1, 2 * 5 * 4), down = mb_cost_xfer_ms(pc, 1, 0, 4 + kv);
    assert_float_equal(pd.ttft_ms, up + pre + down, 1e-9 * pd.ttft_ms);
    assert_true(down > 50 + kv * 8 / 8e6 * 1e3 * 0.99); /* the cache at 8 Mbit/s and half the RTT */
    assert_float_equal(pd.tpot_ms, dec, 1e-9 * dec);
    assert_float_equal(pd.total_ms, pd.ttft_ms + 7 * pd.tpot_ms, 1e-9 * pd.total_ms);
    /* energy: the phone computing every decode step, no radio in decode */
    assert_float_equal(pd.energy_per_token_mj, mb_cost_site_type(dc, 0)->compute_w * dec, 1e-9 * dec);
    assert_true(pd.ttft_energy_mj > mb_cost_site_type(dc, 0)->idle_w * pd.ttft_ms); /* + the radio */
    /* Galaxy: per layer two all-reduces through the leader, each a round trip on the LAN */
    int sites[2] = {1, 2};
    double speed[2] = {1, 1};
    mb_gen_tp tp;
    assert_int_equal(mb_gen_tp_partition(&tiny_gpt2, 2, sites, speed, &tp, err, sizeof err), 0);
    mb_gen_step_pred g1;
    assert_int_equal(mb_gen_galaxy_predict_step(f.m->decode, dc, &tp, 0, 2, &g1, err, sizeof err), 0);
    double ar = mb_cost_xfer_ms(dc, 2, 1, 32 * 4) + mb_cost_xfer_ms(dc, 1, 2, 32 * 4);
    assert_float_equal(g1.sync_ms, 2 * 2 * ar, 1e-9);
    assert_true(ar > 2 && ar < 2.1); /* 1 ms each way */
    assert_int_equal(g1.down_bytes, 4);
    double rest = mb_cost_xfer_ms(dc, 0, 1, g1.up_bytes) + mb_cost_xfer_ms(dc, 1, 2, g1.up_bytes) +
                  mb_cost_xfer_ms(dc, 2, 1, 8) + mb_cost_xfer_ms(dc, 1, 0, 4);
    assert_float_equal(g1.ms, g1.compute_ms + g1.sync_ms + rest, 1e-9 * g1.ms);
    /* one worker: no all-reduce */
    mb_gen_tp one;
    assert_int_equal(mb_gen_tp_partition(&tiny_gpt2, 1, sites, speed, &one, err, sizeof err), 0);
    mb_gen_step_pred g0;
    assert_int_equal(mb_gen_galaxy_predict_step(f.m->decode, dc, &one, 0, 2, &g0, err, sizeof err), 0);
    assert_float_equal(g0.sync_ms, 0, 0);
    assert_true(g1.compute_ms < g0.compute_ms); /* the work is shared */
    /* a step's device energy: compute, idle, and the radio only when bytes move */
    const mb_nodetype *ph = mb_cost_site_type(dc, 0);
    mb_gen_step_pred st = {0};
    st.ms = 100;
    st.device_ms = st.compute_ms = 20;
    mb_gen_energy e0, e1, e2;
    mb_gen_step_energy(dc, 0, 1, &st, 0, &e0);
    assert_float_equal(e0.compute_mj, ph->compute_w * 20, 1e-9);
    assert_float_equal(e0.idle_mj, ph->idle_w * 80, 1e-9);
    assert_float_equal(e0.radio_mj, 0, 0);
    st.up_bytes = 100000; /* 0.1 MB at 8 Mbit/s: about 104 ms on the air, past the step's end */
    st.down_bytes = 4;
    mb_gen_step_energy(dc, 0, 1, &st, 0, &e1);
    assert_true(e1.radio_mj > 1288.04 * 0.1); /* LTE's base power alone over 100 ms */
    assert_float_equal(e1.total_mj, e1.compute_mj + e1.idle_mj + e1.radio_mj, 1e-9);
    mb_gen_step_energy(dc, 0, 1, &st, 1000, &e2); /* steps a second apart: a second of tail */
    assert_true(e2.radio_mj > e1.radio_mj + 0.8 * 1060);
    mb_cost_free(pc);
    mb_cost_free(dc);
    mb_profile_free(f.pp);
    mb_profile_free(f.dp);
    mb_graph_free(f.pg);
    mb_gen_model_free(f.m);
}

static void test_bandwidth(void **state)
{
    (void)state;
    double gbs = mb_mem_read_bandwidth(64u << 20, 2);
    print_message("streaming read: %.2f GB/s\n", gbs);
    assert_true(gbs > 0.1 && gbs < 10000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_published_sizes), cmocka_unit_test(test_cache_gpt2),
        cmocka_unit_test(test_cache_llama),     cmocka_unit_test(test_decode_step_cache),
        cmocka_unit_test(test_onnx_roundtrip),  cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_split_generation), cmocka_unit_test(test_pipeline_plan),
        cmocka_unit_test(test_bandwidth),        cmocka_unit_test(test_galaxy_generation),
        cmocka_unit_test(test_pd_generation),    cmocka_unit_test(test_speculative_generation),
        cmocka_unit_test(test_policy_predictions), cmocka_unit_test(test_verify_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
