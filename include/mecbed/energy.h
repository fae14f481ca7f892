/* mecbed: energy models. Device compute power x busy time, idle power while
 * waiting, and the radio after Huang et al. (MobiSys 2012): while
 * transferring, P = a_u * up_Mbps + a_d * down_Mbps + beta; around transfers
 * the RRC state machine (promotion before the first transfer after idle, a
 * tail after the last). Constants and their sources: docs/energy.md and
 * policies/energy.c. */
#ifndef MECBED_ENERGY_H
#define MECBED_ENERGY_H

#include <stddef.h>

typedef enum mb_radio_kind { MB_RADIO_NONE = 0, MB_RADIO_LTE, MB_RADIO_WIFI, MB_RADIO_3G } mb_radio_kind;

typedef struct mb_radio_model {
    mb_radio_kind kind;
    const char *name;
    double a_up_mw_per_mbps;   /* Huang et al. Table 3 */
    double a_down_mw_per_mbps;
    double beta_mw;            /* base power while transferring */
    double promo_w, promo_s;   /* idle -> connected promotion */
    double tail_w, tail_s;     /* connected, no data, until the inactivity timers expire */
    double tail2_w, tail2_s;   /* a second tail stage (3G FACH); 0 when none */
    double idle_w;             /* RRC idle (paging), averaged */
    const char *source;
} mb_radio_model;

/* Built-in constants; NULL for MB_RADIO_NONE. */
const mb_radio_model *mb_radio_get(mb_radio_kind kind);
/* "lte", "wifi", "3g", "none"; -1 if unknown. */
int mb_radio_from_name(const char *name);

/* One transfer seen by the device's radio: [t0, t1) seconds from the frame's
 * start, at an average rate over the interval (Mbit/s, each direction). */
typedef struct mb_radio_burst {
    double t0, t1;
    double up_mbps, down_mbps;
} mb_radio_burst;

typedef struct mb_radio_energy {
    double active_mj;  /* transferring (Huang power) */
    double tail_mj;    /* connected without data: gaps and the tail */
    double promo_mj;   /* promotions from idle */
    double promo_s;    /* time spent promoting (adds to latency when it happens) */
    double total_mj;
} mb_radio_energy;

/* Radio energy of one frame. bursts sorted by t0 (overlaps allowed: merged).
 * frame_s: the frame's end (latency). interval_s: time between frame starts
 * when frames repeat; 0 means one frame of interest with the radio already
 * connected (no promotion): the time before its first burst and after its
 * last, up to frame_s, is connected without data (tail power). When
 * interval_s > 0, the tail runs after the last burst until min(tail end,
 * next frame start); when the radio reaches idle before the next frame, the
 * frame pays a promotion before its first burst and idle power otherwise. */
void mb_radio_frame_energy(const mb_radio_model *m, const mb_radio_burst *b, int n, double frame_s,
                           double interval_s, mb_radio_energy *out);

/* Under time dilation (timescale.h) a run's clock is k times slower than
 * the emulated world: a packet log or timeline gives wall times and wall
 * rates. The state machine must see emulated time, or its timers (a tail
 * of 11.6 s) would cover k times fewer emulated seconds. Converts bursts in
 * place: times / k, rates x k (the same bytes in 1/k of the time). k < 1
 * counts as 1. */
void mb_radio_bursts_to_emulated(mb_radio_burst *b, int n, double k);
/* mb_radio_frame_energy of bursts, frame_s and interval_s measured in wall
 * time on a run dilated by k: the energy in emulated time. b is not
 * modified. */
void mb_radio_frame_energy_dilated(const mb_radio_model *m, const mb_radio_burst *b, int n, double frame_s,
                                   double interval_s, double k, mb_radio_energy *out);

#endif
