/* The built-in model zoo: names and dispatch to the builders. */
#include "mecbed/model.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/decoder.h"
#include "mecbed/zoo.h"
#include "zoo_build.h"
#include "zoo_models.h"

typedef struct zoo_entry {
    const char *name;
    mb_graph *(*build)(uint64_t seed, char *err, size_t errlen);
} zoo_entry;

static const zoo_entry zoo[] = {
    {"alexnet", zoo_alexnet},         {"vgg16", zoo_vgg16},         {"resnet18", zoo_resnet18},
    {"resnet50", zoo_resnet50},       {"resnet152", zoo_resnet152}, {"mobilenetv2", zoo_mobilenetv2},
    {"googlenet", zoo_googlenet},     {"densenet121", zoo_densenet121}, {"tiny_yolov2", zoo_tiny_yolov2},
    {"deit_tiny", zoo_deit_tiny},     {"vit_b16", zoo_vit_b16},     {"bert_base", zoo_bert_base},
};
#define N_ZOO (sizeof zoo / sizeof zoo[0])

static const char *const zoo_name_list[N_ZOO + 1] = {
    "alexnet", "vgg16", "resnet18", "resnet50", "resnet152", "mobilenetv2", "googlenet", "densenet121",
    "tiny_yolov2", "deit_tiny", "vit_b16", "bert_base", NULL,
};
_Static_assert(sizeof zoo_name_list / sizeof zoo_name_list[0] == N_ZOO + 1, "one name per zoo entry");

const char *const *mb_zoo_names(void)
{
    return zoo_name_list;
}

/* "ResNet-50", "resnet_50" and "resnet50" all name the same model. */
static int same_model_name(const char *a, const char *b)
{
    for (;;) {
        while (*a == '-' || *a == '_')
            a++;
        while (*b == '-' || *b == '_')
            b++;
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
        if (!*a)
            return 1;
        a++;
        b++;
    }
}

/* "gpt2:prefill=P[,capacity=C]" or "gpt2:capacity=C": a decoder's prefill
 * graph for a prompt of P tokens, or its decode graph, with a cache of C
 * positions (default MB_DECODER_ZOO_CAPACITY): the graphs of a measured
 * generation (docs/generation.md), which nodes build by these names. */
static mb_graph *decoder_variant(const char *name, uint64_t seed, char *err, size_t errlen)
{
    const char *colon = strchr(name, ':');
    char base[64];
    size_t bl = (size_t)(colon - name);
    if (bl >= sizeof base) {
        snprintf(err, errlen, "unknown model '%s'", name);
        return NULL;
    }
    memcpy(base, name, bl);
    base[bl] = 0;
    const mb_decoder_cfg *dc = mb_decoder_find(base);
    long prefill = 0, verify = 0, cap = MB_DECODER_ZOO_CAPACITY;
    const char *q = colon + 1;
    int ok = dc != NULL;
    while (ok && *q) {
        char *end;
        if (!strncmp(q, "prefill=", 8))
            prefill = strtol(q + 8, &end, 10);
        else if (!strncmp(q, "verify=", 7))
            verify = strtol(q + 7, &end, 10);
        else if (!strncmp(q, "capacity=", 9))
            cap = strtol(q + 9, &end, 10);
        else
            break;
        ok = end != q && (*end == ',' || !*end);
        q = *end ? end + 1 : end;
    }
    if (!ok || *q || prefill < 0 || verify < 0 || (prefill && verify) || cap < 1) {
        snprintf(err, errlen, "unknown model '%s' (a decoder variant is NAME:prefill=P[,capacity=C], "
                 "NAME:verify=V[,capacity=C] or NAME:capacity=C)", name);
        return NULL;
    }
    /* verify=V: a decode step of V tokens over the cache (speculative decoding's
     * verification: the next token after each of them) */
    return prefill ? mb_decoder_build(dc, prefill, cap, 0, seed, zoo_structure_only(), err, errlen)
                   : mb_decoder_build(dc, verify ? verify : 1, cap, 1, seed, zoo_structure_only(), err, errlen);
}

mb_graph *mb_zoo_build(const char *name, uint64_t seed, char *err, size_t errlen)
{
    if (strchr(name, ':'))
        return decoder_variant(name, seed, err, errlen);
    for (size_t i = 0; i < N_ZOO; i++)
        if (same_model_name(name, zoo[i].name))
            return zoo[i].build(seed, err, errlen);
    /* the decoders of generation (docs/generation.md): their decode-step graph */
    const mb_decoder_cfg *dc = mb_decoder_find(name);
    if (dc)
        return mb_decoder_build(dc, 1, MB_DECODER_ZOO_CAPACITY, 1, seed, zoo_structure_only(), err, errlen);
    size_t o = (size_t)snprintf(err, errlen, "unknown model '%s' (built-in:", name);
    for (size_t i = 0; i < N_ZOO && o < errlen; i++)
        o += (size_t)snprintf(err + o, errlen - o, " %s", zoo[i].name);
    for (const char *const *d = mb_decoder_names(); *d && o < errlen; d++)
        o += (size_t)snprintf(err + o, errlen - o, " %s", *d);
    if (o < errlen)
        snprintf(err + o, errlen - o, ")");
    return NULL;
}

mb_graph *mb_zoo_build_structure(const char *name, char *err, size_t errlen)
{
    zoo_set_structure_only(1);
    mb_graph *g = mb_zoo_build(name, MB_ZOO_SEED, err, errlen);
    zoo_set_structure_only(0);
    return g;
}
