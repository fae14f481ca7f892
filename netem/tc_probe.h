/* Run-time detection of kernel qdiscs (netem/backend_tc.c). */
#ifndef MECBED_NETEM_TC_PROBE_H
#define MECBED_NETEM_TC_PROBE_H

/* 1 if this kernel can run a netem qdisc (tried in a throw-away namespace). */
int tc_has_netem(void);

#endif
