/* A set of rectangles (unions of mb_region) with coverage tests: what part
 * of a tensor a site holds (core: plans are validated with it). */
#ifndef MECBED_REGIONSET_H
#define MECBED_REGIONSET_H

#include "mecbed/tensor.h"

typedef struct mb_regionset {
    int n, cap;
    mb_region *r;
} mb_regionset;

/* Adds r (empty regions are ignored). 0 or -1 on allocation failure. */
int mb_regionset_add(mb_regionset *s, mb_region r);
/* 1 when every element of r lies in the union (an empty r is covered). */
int mb_regionset_covers(const mb_regionset *s, mb_region r);
/* 1 when some element of r lies in the union. */
int mb_regionset_intersects(const mb_regionset *s, mb_region r);
void mb_regionset_free(mb_regionset *s);
mb_region mb_region_intersect(mb_region a, mb_region b);

#endif
