/* mecbed: structure-only zoo builds, for listing and planning tools that
 * need shapes, params and MACs but not weight values. Every weight tensor has
 * its real shape but stays zero (the generator does not run and the pages
 * are never touched), so building VGG16 takes milliseconds instead of
 * seconds. Running such a graph gives zeros: use mb_zoo_build for that. */
#ifndef MECBED_ZOO_H
#define MECBED_ZOO_H

#include <stddef.h>

#include "mecbed/graph.h"

mb_graph *mb_zoo_build_structure(const char *name, char *err, size_t errlen);

#endif
