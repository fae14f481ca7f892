/* Rectangle unions. Coverage by coordinate compression over the rectangles
 * that meet the query: plans hold few pieces per tensor (tiles, slices), so
 * the quadratic grid stays small. */
#include <stdlib.h>

#include "mecbed/regionset.h"

mb_region mb_region_intersect(mb_region a, mb_region b)
{
    mb_region r = {a.h0 > b.h0 ? a.h0 : b.h0, a.h1 < b.h1 ? a.h1 : b.h1,
                   a.w0 > b.w0 ? a.w0 : b.w0, a.w1 < b.w1 ? a.w1 : b.w1};
    if (r.h1 < r.h0)
        r.h1 = r.h0;
    if (r.w1 < r.w0)
        r.w1 = r.w0;
    return r;
}

static int nonempty(mb_region r)
{
    return r.h1 > r.h0 && r.w1 > r.w0;
}

int mb_regionset_add(mb_regionset *s, mb_region r)
{
    if (!nonempty(r))
        return 0;
    for (int i = 0; i < s->n; i++) { /* already inside one piece: nothing to add */
        mb_region q = s->r[i];
        if (q.h0 <= r.h0 && q.h1 >= r.h1 && q.w0 <= r.w0 && q.w1 >= r.w1)
            return 0;
    }
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 4;
        mb_region *n = realloc(s->r, sizeof(*n) * (size_t)cap);
        if (!n)
            return -1;
        s->r = n;
        s->cap = cap;
    }
    s->r[s->n++] = r;
    return 0;
}

int mb_regionset_intersects(const mb_regionset *s, mb_region r)
{
    for (int i = 0; i < s->n; i++)
        if (nonempty(mb_region_intersect(s->r[i], r)))
            return 1;
    return 0;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int uniq(int64_t *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp64);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!m || v[m - 1] != v[i])
            v[m++] = v[i];
    return m;
}

int mb_regionset_covers(const mb_regionset *s, mb_region r)
{
    if (!nonempty(r))
        return 1;
    int k = 0;
    for (int i = 0; i < s->n; i++) {
        mb_region q = s->r[i];
        if (q.h0 <= r.h0 && q.h1 >= r.h1 && q.w0 <= r.w0 && q.w1 >= r.w1)
            return 1;
        k += nonempty(mb_region_intersect(q, r));
    }
    if (!k)
        return 0;
    mb_region *pieces = malloc(sizeof(*pieces) * (size_t)k);
    int64_t *hs = malloc(sizeof(int64_t) * (size_t)(2 * k + 2));
    int64_t *ws = malloc(sizeof(int64_t) * (size_t)(2 * k + 2));
    int ok = 0;
    if (!pieces || !hs || !ws)
        goto out;
    int np = 0, nh = 0, nw = 0;
    hs[nh++] = r.h0;
    hs[nh++] = r.h1;
    ws[nw++] = r.w0;
    ws[nw++] = r.w1;
    for (int i = 0; i < s->n; i++) {
        mb_region q = mb_region_intersect(s->r[i], r);
        if (!nonempty(q))
            continue;
        pieces[np++] = q;
        hs[nh++] = q.h0;
        hs[nh++] = q.h1;
        ws[nw++] = q.w0;
        ws[nw++] = q.w1;
    }
    nh = uniq(hs, nh);
    nw = uniq(ws, nw);
    ok = 1;
    for (int a = 0; a + 1 < nh && ok; a++)
        for (int b = 0; b + 1 < nw && ok; b++) {
            int64_t h = hs[a], w = ws[b]; /* the cell [hs[a],hs[a+1]) x [ws[b],ws[b+1]) */
            int hit = 0;
            for (int i = 0; i < np && !hit; i++)
                hit = pieces[i].h0 <= h && pieces[i].h1 > h && pieces[i].w0 <= w && pieces[i].w1 > w;
            ok = hit;
        }
out:
    free(pieces);
    free(hs);
    free(ws);
    return ok;
}

void mb_regionset_free(mb_regionset *s)
{
    free(s->r);
    s->r = NULL;
    s->n = s->cap = 0;
}
