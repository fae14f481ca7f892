/* mecbed goodput estimator (see goodput.h). */
#include "mecbed/goodput.h"

#include <math.h>

void mb_goodput_init(mb_goodput *g, double alpha, double alpha_down, double min_bytes)
{
    g->alpha = alpha > 0 && alpha <= 1 ? alpha : 0.3;
    g->alpha_down = alpha_down > 0 && alpha_down <= 1 ? alpha_down : g->alpha;
    g->min_bytes = min_bytes >= 0 ? min_bytes : 0;
    g->est_bps = 0;
    g->n = 0;
}

int mb_goodput_add(mb_goodput *g, int64_t bytes, double seconds, double base_delay_s)
{
    if (bytes <= 0 || (double)bytes < g->min_bytes || !(seconds > 0))
        return 0;
    double t = seconds - (base_delay_s > 0 ? base_delay_s : 0);
    /* A transfer faster than the delay allows means the delay estimate is
     * off; count only the serialisation we can be sure of. */
    if (t < seconds * 0.05)
        t = seconds * 0.05;
    double rate = (double)bytes * 8 / t;
    double a = rate < g->est_bps ? g->alpha_down : g->alpha;
    g->est_bps = g->n ? (1 - a) * g->est_bps + a * rate : rate;
    g->n++;
    return 1;
}

double mb_goodput_bps(const mb_goodput *g)
{
    return g->est_bps;
}

int mb_goodput_changed(const mb_goodput *g, double reference_bps, double rel)
{
    if (!g->n || !(reference_bps > 0))
        return 0;
    return fabs(g->est_bps - reference_bps) / reference_bps > rel;
}
