/* Graph IR: shape inference, validation errors, region mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "mecbed/graph.h"
#include "mecbed/platform.h"

static int add_input(mb_graph *g, int64_t n, int64_t c, int64_t h, int64_t w)
{
    mb_node in = {.type = MB_OP_INPUT};
    strcpy(in.name, "x");
    in.a.shape_ndim = 4;
    in.a.shape[0] = n;
    in.a.shape[1] = c;
    in.a.shape[2] = h;
    in.a.shape[3] = w;
    return mb_graph_add(g, &in);
}

static int add_conv(mb_graph *g, int src, int64_t m, int64_t c, int k, int s, int p, int d, int group)
{
    mb_node n = {.type = MB_OP_CONV, .n_inputs = 1, .inputs = {src}, .n_params = 1};
    snprintf(n.name, sizeof n.name, "conv%d", g->n_nodes);
    n.params[0] = mb_tensor_new4(m, c / group, k, k);
    n.a.stride[0] = n.a.stride[1] = s;
    n.a.pads[0] = n.a.pads[1] = n.a.pads[2] = n.a.pads[3] = p;
    n.a.dilation[0] = n.a.dilation[1] = d;
    n.a.group = group;
    return mb_graph_add(g, &n);
}

static void test_conv_shapes_and_macs(void **state)
{
    (void)state;
    char err[256];
    mb_graph *g = mb_graph_new("t");
    int x = add_input(g, 1, 3, 224, 224);
    int c = add_conv(g, x, 64, 3, 7, 2, 3, 1, 1);
    g->outputs[g->n_outputs++] = c;
    assert_int_equal(mb_graph_infer(g, err, sizeof err), 0);
    const mb_node *n = &g->nodes[c];
    assert_int_equal(n->out_dims[1], 64);
    assert_int_equal(n->out_dims[2], 112);
    assert_int_equal(n->out_dims[3], 112);
    assert_int_equal(n->macs, (int64_t)64 * 112 * 112 * 3 * 7 * 7);
    assert_int_equal(n->n_weights, 64 * 3 * 7 * 7);
    assert_true(n->local);
    assert_int_equal(n->out_bytes, 64 * 112 * 112 * 4);
    mb_graph_free(g);
}

static void test_pool_ceil_and_same(void **state)
{
    (void)state;
    char err[256];
    mb_graph *g = mb_graph_new("t");
    int x = add_input(g, 1, 8, 112, 112);
    mb_node p = {.type = MB_OP_MAXPOOL, .n_inputs = 1, .inputs = {x}};
    strcpy(p.name, "pool");
    p.a.kernel[0] = p.a.kernel[1] = 3;
    p.a.stride[0] = p.a.stride[1] = 2;
    p.a.ceil_mode = 1;
    int a = mb_graph_add(g, &p);
    p.a.ceil_mode = 0;
    p.a.auto_pad = MB_AUTO_PAD_SAME_UPPER;
    int b = mb_graph_add(g, &p);
    g->outputs[g->n_outputs++] = a;
    g->outputs[g->n_outputs++] = b;
    assert_int_equal(mb_graph_infer(g, err, sizeof err), 0);
    assert_int_equal(g->nodes[a].out_dims[2], 56); /* ceil((112-3)/2)+1 = 56 */
    assert_int_equal(g->nodes[b].out_dims[2], 56);
    assert_int_equal(g->nodes[b].a.pads[0], 0);    /* total pad 1: 0 before, 1 after */
    assert_int_equal(g->nodes[b].a.pads[2], 1);
    mb_graph_free(g);
}

static void test_errors_name_the_node(void **state)
{
    (void)state;
    char err[256] = "";
    mb_graph *g = mb_graph_new("t");
    int x = add_input(g, 1, 3, 8, 8);
    int c = add_conv(g, x, 4, 6, 3, 1, 1, 1, 1); /* weights expect 6 channels */
    g->outputs[g->n_outputs++] = c;
    assert_int_equal(mb_graph_infer(g, err, sizeof err), -1);
    assert_non_null(strstr(err, "conv1"));
    mb_graph_free(g);

    g = mb_graph_new("t");
    x = add_input(g, 1, 3, 8, 8);
    mb_node r = {.type = MB_OP_RESHAPE, .n_inputs = 1, .inputs = {x}};
    strcpy(r.name, "reshape");
    r.a.shape_ndim = 2;
    r.a.shape[0] = 5;
    r.a.shape[1] = -1;
    g->outputs[g->n_outputs++] = mb_graph_add(g, &r);
    assert_int_equal(mb_graph_infer(g, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot infer"));
    mb_graph_free(g);
}

static void test_input_region(void **state)
{
    (void)state;
    char err[256];
    mb_graph *g = mb_graph_new("t");
    int x = add_input(g, 1, 4, 20, 20);
    int c = add_conv(g, x, 4, 4, 3, 2, 1, 2, 1); /* k3 s2 p1 d2: out = (20+2-5)/2+1 = 9 */
    g->outputs[g->n_outputs++] = c;
    assert_int_equal(mb_graph_infer(g, err, sizeof err), 0);
    assert_int_equal(g->nodes[c].out_dims[2], 9);
    mb_region r = {3, 6, 0, 9};
    mb_region in = mb_node_input_region(g, c, 0, r);
    /* rows [3*2-1, 5*2-1+2*2+1) = [5, 14) */
    assert_int_equal(in.h0, 5);
    assert_int_equal(in.h1, 14);
    assert_int_equal(in.w0, 0);  /* clipped at the padding */
    assert_int_equal(in.w1, 20); /* 8*2-1+5 = 20 */
    mb_graph_free(g);
}

static void test_transpose_region_covers_contributors(void **state)
{
    (void)state;
    char err[256];
    mb_graph *g = mb_graph_new("t");
    int x = add_input(g, 1, 2, 7, 7);
    mb_node n = {.type = MB_OP_CONV_TRANSPOSE, .n_inputs = 1, .inputs = {x}, .n_params = 1};
    strcpy(n.name, "deconv");
    n.params[0] = mb_tensor_new4(2, 3, 3, 3);
    n.a.stride[0] = n.a.stride[1] = 2;
    n.a.pads[0] = n.a.pads[1] = n.a.pads[2] = n.a.pads[3] = 1;
    int t = mb_graph_add(g, &n);
    g->outputs[g->n_outputs++] = t;
    assert_int_equal(mb_graph_infer(g, err, sizeof err), 0);
    int64_t OH = g->nodes[t].out_dims[2];
    assert_int_equal(OH, 2 * 6 + 3 - 2);
    /* brute force: every (input row, tap) that lands in the output rows must be inside the region */
    for (int64_t o0 = 0; o0 < OH; o0++)
        for (int64_t o1 = o0 + 1; o1 <= OH; o1++) {
            mb_region in = mb_node_input_region(g, t, 0, (mb_region){o0, o1, 0, OH});
            for (int64_t i = 0; i < 7; i++)
                for (int j = 0; j < 3; j++) {
                    int64_t o = i * 2 - 1 + j;
                    if (o >= o0 && o < o1) {
                        assert_true(i >= in.h0);
                        assert_true(i < in.h1);
                    }
                }
        }
    mb_graph_free(g);
}

static void test_locality_flags(void **state)
{
    (void)state;
    char err[256];
    mb_graph *g = mb_graph_new("t");
    int x = add_input(g, 1, 4, 8, 8);
    mb_node gap = {.type = MB_OP_GLOBALAVGPOOL, .n_inputs = 1, .inputs = {x}};
    strcpy(gap.name, "gap");
    int p = mb_graph_add(g, &gap);
    mb_node mul = {.type = MB_OP_MUL, .n_inputs = 2, .inputs = {x, p}};
    strcpy(mul.name, "scale");
    int m = mb_graph_add(g, &mul);
    mb_node cat = {.type = MB_OP_CONCAT, .n_inputs = 2, .inputs = {x, m}, .a.axis = 1};
    strcpy(cat.name, "cat");
    int c = mb_graph_add(g, &cat);
    g->outputs[g->n_outputs++] = c;
    assert_int_equal(mb_graph_infer(g, err, sizeof err), 0);
    assert_false(g->nodes[p].local);
    assert_true(g->nodes[m].local); /* broadcast over H/W from 1 */
    assert_true(g->nodes[c].local);
    assert_int_equal(g->nodes[c].out_dims[1], 8);
    mb_region in = mb_node_input_region(g, m, 1, (mb_region){2, 4, 1, 3});
    assert_int_equal(in.h0, 0);
    assert_int_equal(in.h1, 1);
    assert_int_equal(mb_graph_consumers(g, x, NULL, 0), 3); /* gap, scale, cat */
    mb_graph_free(g);
}

int main(int argc, char **argv)
{
    mb_platform_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_shapes_and_macs),
        cmocka_unit_test(test_pool_ceil_and_same),
        cmocka_unit_test(test_errors_name_the_node),
        cmocka_unit_test(test_input_region),
        cmocka_unit_test(test_transpose_region_covers_contributors),
        cmocka_unit_test(test_locality_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
