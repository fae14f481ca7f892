/* mb_model_load: one entry point for every model source. A zoo name wins;
 * otherwise the argument is a file: *.onnx goes to the ONNX importer, any
 * other file is read as mecbed's text format. */
#include "mecbed/model.h"
#include "mecbed/onnx.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcasecmp(s + a - b, suffix);
}

static int is_zoo_name(const char *name, char *err, size_t errlen, mb_graph **g)
{
    /* mb_zoo_build matches names loosely ("ResNet-50"); a path never matches. */
    if (strchr(name, '/') || strchr(name, '.'))
        return 0;
    *g = mb_zoo_build(name, MB_ZOO_SEED, err, errlen);
    return *g != NULL;
}

static mb_graph *load_onnx(const char *path, char *err, size_t errlen)
{
    /* ONNX-HOOK: the ONNX importer (models/onnx/) is called here, and only here. */
    return mb_onnx_load(path, err, errlen);
}

mb_graph *mb_model_load(const char *name_or_path, char *err, size_t errlen)
{
    mb_graph *g = NULL;
    char zerr[512] = "";
    if (!name_or_path || !*name_or_path) {
        snprintf(err, errlen, "no model given");
        return NULL;
    }
    if (is_zoo_name(name_or_path, zerr, sizeof zerr, &g))
        return g;
    struct stat st;
    int exists = stat(name_or_path, &st) == 0;
    if (!exists) {
        if (strchr(name_or_path, '/') || strchr(name_or_path, '.'))
            snprintf(err, errlen, "%s: no such file", name_or_path);
        else
            snprintf(err, errlen, "%s; and there is no file of that name", zerr);
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: is a directory, not a model file", name_or_path);
        return NULL;
    }
    g = ends_with(name_or_path, ".onnx") ? load_onnx(name_or_path, err, errlen)
                                         : mb_modelfile_read(name_or_path, err, errlen);
    if (!g)
        return NULL;
    /* Every source hands back an inferred graph; inferring again is harmless. */
    char e[512];
    if (mb_graph_infer(g, e, sizeof e)) {
        snprintf(err, errlen, "%s: %s", name_or_path, e);
        mb_graph_free(g);
        return NULL;
    }
    return g;
}
