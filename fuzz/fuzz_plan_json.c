/* libFuzzer harness: plan JSON (core/plan_json.c) read against a small model
 * (FUZZ_MODEL) on a device-edge link, then validated and written back; an
 * accepted, valid plan must survive the JSON round trip. */
#include "fuzz_util.h"

#include "mecbed/graph.h"
#include "mecbed/plan.h"
#include "mecbed/topology.h"
#include "mecbed/model.h"

static mb_graph *g;
static mb_topology topo;

static void setup(void)
{
    char err[512];
    g = mb_modelfile_read(FUZZ_MODEL, err, sizeof err);
    if (!g || mb_topology_from_link("rate=10mbit,rtt=20ms", &topo, err, sizeof err)) {
        fprintf(stderr, "fuzz_plan_json: setup: %s\n", err);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1 << 18))
        return 0;
    if (!g)
        setup();
    char *text = fuzz_string(data, size);
    if (!text)
        return 0;
    char err[512] = "";
    mb_plan *p = mb_plan_from_json(text, g, &topo, err, sizeof err);
    free(text);
    if (!p) {
        fuzz_check_err(err);
        return 0;
    }
    if (mb_plan_validate(p, g, &topo, err, sizeof err) == 0) {
        char *js = mb_plan_to_json(p, g, &topo, 1);
        if (js) {
            mb_plan *q = mb_plan_from_json(js, g, &topo, err, sizeof err);
            if (!q || q->n_steps != p->n_steps)
                abort(); /* a valid plan written as JSON must read back */
            mb_plan_free(q);
            free(js);
        }
    }
    mb_plan_free(p);
    return 0;
}
