// mecbed-ns3: one mecbed link carried through an ns-3 simulated link in real
// time (docs/ns3.md). Spawned by the ns3 link backend (netem/backend_ns3.c).
//
// It enters each side's network namespace (setns), opens a TAP device there
// itself (/dev/net/tun, IFF_TAP|IFF_NO_PI) and hands the fd to an ns-3
// FdNetDevice on a node of its own (A for side a, B for side b). A and B are
// joined by the simulated link (point-to-point or Wi-Fi). Each node relays
// the IPv4 frames its TAP sends across the simulated link, and the frames the
// link delivers out of its TAP, addressed to the peer TAP's MAC: the two
// namespaces see one Ethernet segment whose timing, losses and rate are the
// simulated link's. ARP does not cross (the backend installs permanent
// neighbour entries), so only IPv4 travels over the simulated link.
//
// RealtimeSimulatorImpl (BestEffort) with ChecksumEnabled=true. Real-time
// lag (wall clock minus simulation clock, sampled at every frame written to a
// TAP and every 10 ms) is measured; the run is "invalid" when it exceeds the
// limit, and says so in every status line.
//
// Protocol with the backend (one line each, on stdout; commands on stdin):
//   -> "ready <mac-a> <mac-b>"        TAPs exist (or "error <message>", exit 1)
//   <- "start"                        addresses and routes are set: run
//   -> "running"
//   -> "status key=value ..."         every 200 ms (non-blocking: dropped if unread)
//   <- "status"                       -> "now key=value ..." (the current figures)
//   <- EOF or "stop"                  stop, print a last status line, exit 0
// With --check it only validates the parameters (exit 0, or 2 with the
// message on stderr).
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "ns3/basic-energy-source-helper.h"
#include "ns3/boolean.h"
#include "ns3/constant-position-mobility-model.h"
#include "ns3/constant-velocity-mobility-model.h"
#include "ns3/core-module.h"
#include "ns3/double.h"
#include "ns3/error-model.h"
#include "ns3/fd-net-device.h"
#include "ns3/mobility-helper.h"
#include "ns3/network-module.h"
#include "ns3/point-to-point-helper.h"
#include "ns3/point-to-point-net-device.h"
#include "ns3/queue.h"
#include "ns3/realtime-simulator-impl.h"
#include "ns3/wifi-helper.h"
#include "ns3/wifi-mac-helper.h"
#include "ns3/wifi-mac.h"
#include "ns3/wifi-net-device.h"
#include "ns3/wifi-radio-energy-model-helper.h"
#include "ns3/yans-wifi-helper.h"
#include "ns3/internet-stack-helper.h"
#include "ns3/ipv4-address-helper.h"
#include "ns3/ipv4-static-routing-helper.h"
#include "ns3/ipv4-static-routing.h"
#include "ns3/lte-helper.h"
#include "ns3/udp-header.h"
#include "ns3/ipv4-header.h"
#include "ns3/lte-ue-net-device.h"
#include "ns3/point-to-point-epc-helper.h"

using namespace ns3;

namespace {

const uint16_t ETH_IPV4 = 0x0800;
const uint16_t ETH_FILLER = 0x88B5; // IEEE local experimental: competing stations' frames
// LTE cells that stayed real-time on this machine kind (2 shared cores; docs/ns3.md):
// at most 10 other UEs, and at most 20 Mbit/s of their downlink load in all
const long LTE_MAX_UES = 10;
const double LTE_MAX_LOAD_BPS = 20e6;

struct Params {
    std::string model = "p2p";
    double rate_bps[2] = {0, 0};   // a->b, b->a; 0 = unlimited
    double delay_s[2] = {0, 0};
    double loss[2] = {0, 0};
    long queue_p[2] = {0, 0};
    long queue_b[2] = {0, 0};
    std::string trace[2];          // native-format rate traces (written by the backend)
    int trace_loop[2] = {1, 1};
    int mtu = 1500;
    uint32_t seed = 1;
    // real time
    double lag_limit_s = 0.010;
    // wifi
    std::string standard = "80211a";
    std::string manager;           // default per standard
    std::string mode;              // constant manager's data mode
    double distance_m = 10;
    double speed_mps = 0;
    int stations = 0;
    double load_bps = 5e6;
    double txpower_dbm = 16.0206;  // ns-3's default
    // lte
    long lte_rbs = 25;             // resource blocks per direction (25 = 5 MHz)
    long lte_ues = 0;              // other UEs in the cell, each with a downlink flow of `load`
    // namespaces, interfaces and their IPv4 addresses (run mode)
    std::string ns[2], ifname[2], addr[2];
};

std::string g_err;

bool fail(const std::string &m)
{
    if (g_err.empty())
        g_err = m;
    return false;
}

// "20m", "20" -> metres; "1.5m/s" -> m/s (suffix must match or be absent)
bool parse_unit(const std::string &key, const std::string &v, const char *const *suffixes, double *out,
                double scale_of_suffix[] = nullptr)
{
    char *end;
    errno = 0;
    double x = strtod(v.c_str(), &end);
    if (end == v.c_str() || errno || !std::isfinite(x))
        return fail(key + "=" + v + ": not a number");
    std::string rest(end);
    if (rest.empty()) {
        *out = x;
        return true;
    }
    for (int i = 0; suffixes && suffixes[i]; i++)
        if (rest == suffixes[i]) {
            *out = x * (scale_of_suffix ? scale_of_suffix[i] : 1.0);
            return true;
        }
    std::string known;
    for (int i = 0; suffixes && suffixes[i]; i++)
        known += std::string(i ? ", " : "") + suffixes[i];
    return fail(key + "=" + v + ": unknown unit '" + rest + "' (" + (known.empty() ? "none" : known) + ")");
}

bool parse_rate(const std::string &key, const std::string &v, double *bps)
{
    static const char *const suf[] = {"bit", "k", "kbit", "m", "mbit", "g", "gbit", nullptr};
    double mul[] = {1, 1e3, 1e3, 1e6, 1e6, 1e9, 1e9};
    std::string s = v;
    for (auto &c : s)
        c = (char)tolower((unsigned char)c);
    if (!parse_unit(key, s, suf, bps, mul))
        return false;
    if (!(*bps > 0))
        return fail(key + "=" + v + ": must be > 0");
    return true;
}

bool parse_time(const std::string &key, const std::string &v, double *s)
{
    static const char *const suf[] = {"s", "ms", "us", nullptr};
    double mul[] = {1, 1e-3, 1e-6};
    if (!parse_unit(key, v, suf, s, mul))
        return false;
    if (*s < 0)
        return fail(key + "=" + v + ": must be >= 0");
    return true;
}

bool parse_int(const std::string &key, const std::string &v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long x = strtol(v.c_str(), &end, 10);
    if (end == v.c_str() || *end || errno)
        return fail(key + "=" + v + ": not a whole number");
    if (x < lo || x > hi)
        return fail(key + "=" + v + ": must be within " + std::to_string(lo) + ".." + std::to_string(hi));
    *out = x;
    return true;
}

// The extra key=value pairs of the link spec (model parameters).
bool parse_extra(const std::string &extra, Params &p)
{
    std::stringstream ss(extra);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (item.empty())
            continue;
        size_t eq = item.find('=');
        if (eq == std::string::npos)
            return fail("'" + item + "' is not key=value");
        std::string k = item.substr(0, eq), v = item.substr(eq + 1);
        if (k == "lag_limit") {
            if (!parse_time(k, v, &p.lag_limit_s))
                return false;
            if (p.lag_limit_s < 100e-6 || p.lag_limit_s > 1)
                return fail(k + "=" + v + ": must be within 100us..1s");
            continue;
        }
        if (p.model == "wifi") {
            if (k == "standard") {
                std::string s = v;
                if (s.rfind("802.11", 0) == 0)
                    s = "80211" + s.substr(6);
                else if (s.rfind("80211", 0) != 0)
                    s = "80211" + s;
                if (s != "80211a" && s != "80211n" && s != "80211ac")
                    return fail("standard=" + v + ": ns3=wifi supports 80211a, 80211n (5 GHz) and 80211ac");
                p.standard = s;
            } else if (k == "manager") {
                if (v != "minstrel" && v != "ideal" && v != "aarf" && v != "constant")
                    return fail("manager=" + v + ": rate control is minstrel (default), ideal, aarf or constant");
                p.manager = v;
            } else if (k == "mode") {
                p.mode = v;
            } else if (k == "distance") {
                static const char *const suf[] = {"m", nullptr};
                if (!parse_unit(k, v, suf, &p.distance_m))
                    return false;
                if (!(p.distance_m >= 0.1 && p.distance_m <= 10000))
                    return fail("distance=" + v + ": must be within 0.1..10000 m");
            } else if (k == "speed") {
                static const char *const suf[] = {"m/s", "mps", nullptr};
                if (!parse_unit(k, v, suf, &p.speed_mps))
                    return false;
                if (!(p.speed_mps >= 0 && p.speed_mps <= 100))
                    return fail("speed=" + v + ": must be within 0..100 m/s (the device walks away from the edge)");
            } else if (k == "stations") {
                long n;
                if (!parse_int(k, v, 0, 8, &n))
                    return false;
                p.stations = (int)n;
            } else if (k == "load") {
                if (!parse_rate(k, v, &p.load_bps))
                    return false;
            } else if (k == "txpower") {
                static const char *const suf[] = {"dBm", "dbm", nullptr};
                if (!parse_unit(k, v, suf, &p.txpower_dbm))
                    return false;
                if (p.txpower_dbm < -10 || p.txpower_dbm > 30)
                    return fail("txpower=" + v + ": must be within -10..30 dBm");
            } else {
                return fail("ns3=wifi: unknown parameter '" + k +
                            "' (standard, manager, mode, distance, speed, stations, load, txpower, lag_limit)");
            }
            continue;
        }
        if (p.model == "lte") {
            if (k == "distance") {
                static const char *const suf[] = {"m", nullptr};
                if (!parse_unit(k, v, suf, &p.distance_m))
                    return false;
                if (!(p.distance_m >= 1 && p.distance_m <= 100000))
                    return fail("distance=" + v + ": must be within 1..100000 m");
            } else if (k == "speed") {
                static const char *const suf[] = {"m/s", "mps", nullptr};
                if (!parse_unit(k, v, suf, &p.speed_mps))
                    return false;
                if (!(p.speed_mps >= 0 && p.speed_mps <= 100))
                    return fail("speed=" + v + ": must be within 0..100 m/s (the device moves away from the eNB)");
            } else if (k == "rbs") {
                if (!parse_int(k, v, 6, 100, &p.lte_rbs))
                    return false;
                if (p.lte_rbs != 6 && p.lte_rbs != 15 && p.lte_rbs != 25 && p.lte_rbs != 50 && p.lte_rbs != 75 &&
                    p.lte_rbs != 100)
                    return fail("rbs=" + v + ": LTE bandwidths are 6, 15, 25, 50, 75 or 100 resource blocks");
            } else if (k == "ues") {
                if (!parse_int(k, v, 0, 64, &p.lte_ues))
                    return false;
            } else if (k == "load") {
                if (!parse_rate(k, v, &p.load_bps))
                    return false;
            } else {
                return fail("ns3=lte: unknown parameter '" + k + "' (distance, speed, rbs, ues, load, lag_limit)");
            }
            continue;
        }
        if (p.model == "p2p")
            return fail("ns3=p2p: unknown parameter '" + k +
                        "' (the link spec's rate, delay, loss, queue, trace and mtu apply; also lag_limit)");
        return fail("ns3=" + p.model + ": unknown parameter '" + k + "'");
    }
    return true;
}

bool validate(Params &p)
{
    if (p.model != "p2p" && p.model != "wifi" && p.model != "lte")
        return fail("unknown ns-3 link model '" + p.model + "' (p2p, wifi, lte)");
    if (p.model == "lte") {
        for (int d = 0; d < 2; d++) {
            if (p.rate_bps[d] > 0)
                return fail("ns3=lte: rate= does not apply (the rate comes from the LTE scheduler, the channel and "
                            "rbs=)");
            if (p.loss[d] > 0 || !p.trace[d].empty() || p.queue_p[d] || p.queue_b[d])
                return fail("ns3=lte: loss=, trace= and queue= do not apply (use distance=, speed=, rbs=)");
        }
        // measured on 2 shared cores (docs/ns3.md); MECBED_NS3_FORCE=1 runs it anyway (the
        // lag check still marks a run that falls behind)
        const char *force = getenv("MECBED_NS3_FORCE");
        bool forced = force && !strcmp(force, "1");
        if (!forced && p.lte_ues > LTE_MAX_UES)
            return fail("ns3=lte: ues=" + std::to_string(p.lte_ues) + " cannot run in real time here (at most " +
                        std::to_string(LTE_MAX_UES) + " other UEs on this machine kind; docs/ns3.md; "
                        "MECBED_NS3_FORCE=1 tries anyway)");
        if (!forced && (double)p.lte_ues * p.load_bps > LTE_MAX_LOAD_BPS)
            return fail("ns3=lte: ues x load = " + std::to_string((int)((double)p.lte_ues * p.load_bps / 1e6)) +
                        " Mbit/s of other traffic cannot be simulated in real time here (at most " +
                        std::to_string((int)(LTE_MAX_LOAD_BPS / 1e6)) +
                        " Mbit/s on this machine kind; docs/ns3.md; MECBED_NS3_FORCE=1 tries anyway)");
    }
    if (p.model == "wifi") {
        for (int d = 0; d < 2; d++) {
            if (p.rate_bps[d] > 0)
                return fail("ns3=wifi: rate= does not apply (the PHY rate comes from rate control: use "
                            "manager=constant,mode=OfdmRate24Mbps to fix it)");
            if (p.loss[d] > 0)
                return fail("ns3=wifi: loss= does not apply (losses come from the channel: use distance=)");
            if (!p.trace[d].empty())
                return fail("ns3=wifi: trace= does not apply (use distance= and speed=)");
            if (p.queue_p[d] || p.queue_b[d])
                return fail("ns3=wifi: queue= is not supported (the Wi-Fi MAC queue keeps ns-3's default)");
        }
        if (p.manager.empty())
            p.manager = "minstrel";
        if (p.manager == "constant" && p.mode.empty())
            p.mode = p.standard == "80211a" ? "OfdmRate24Mbps" : p.standard == "80211n" ? "HtMcs4" : "VhtMcs4";
        if (p.manager != "constant" && !p.mode.empty())
            return fail("mode=" + p.mode + " needs manager=constant");
        if (p.manager == "aarf" && p.standard != "80211a")
            return fail("manager=aarf: only for 80211a (HT/VHT rates need minstrel, ideal or constant)");
        if (!p.mode.empty()) {
            // WifiModeFactory aborts on unknown names: accept only the families we know
            bool ok = p.mode.rfind("OfdmRate", 0) == 0 || p.mode.rfind("HtMcs", 0) == 0 ||
                      p.mode.rfind("VhtMcs", 0) == 0;
            if (!ok)
                return fail("mode=" + p.mode + ": an ns-3 Wi-Fi mode name (OfdmRate6Mbps..OfdmRate54Mbps, HtMcs0..7, "
                            "VhtMcs0..9)");
            bool ofdm = p.mode.rfind("OfdmRate", 0) == 0;
            if ((p.standard == "80211a") != ofdm)
                return fail("mode=" + p.mode + " does not belong to standard=" + p.standard);
        }
    }
    if (p.mtu < 576 || p.mtu > 1500)
        return fail("mtu=" + std::to_string(p.mtu) + ": the ns-3 backend carries Ethernet frames up to mtu=1500");
    for (int d = 0; d < 2; d++)
        if (!p.trace[d].empty()) {
            std::ifstream f(p.trace[d]);
            if (!f)
                return fail("trace " + p.trace[d] + ": cannot open");
        }
    return true;
}

// ---- real-time lag ----

struct Lag {
    Ptr<RealtimeSimulatorImpl> rt;
    double max_s = 0, sum_s = 0;
    uint64_t n = 0, over = 0;
    std::vector<uint32_t> hist = std::vector<uint32_t>(20001, 0); // 10 us buckets up to 200 ms
    void sample()
    {
        if (!rt)
            return;
        double lag = (rt->RealtimeNow() - Simulator::Now()).GetSeconds();
        if (lag < 0)
            lag = 0;
        n++;
        sum_s += lag;
        if (lag > max_s)
            max_s = lag;
        size_t b = (size_t)(lag / 10e-6);
        hist[std::min(b, hist.size() - 1)]++;
    }
    double pct(double q) const
    {
        if (!n)
            return 0;
        uint64_t want = (uint64_t)std::ceil(q * (double)n), seen = 0;
        for (size_t i = 0; i < hist.size(); i++) {
            seen += hist[i];
            if (seen >= want && want)
                return (double)(i + 1) * 10e-6;
        }
        return max_s;
    }
};

Lag g_lag;

// ---- address rewriting (LTE: the EPC knows the UE by the address it gave it) ----

uint16_t csum_fix(uint16_t hc, uint32_t from, uint32_t to) // RFC 1624, host-order values
{
    uint32_t sum = (uint16_t)~hc;
    sum += (uint16_t)~(from >> 16);
    sum += (uint16_t)~(from & 0xffff);
    sum += to >> 16;
    sum += to & 0xffff;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

uint32_t rd32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

void wr32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24), b[1] = (uint8_t)(v >> 16), b[2] = (uint8_t)(v >> 8), b[3] = (uint8_t)v;
}

void fix16(uint8_t *b, uint32_t from, uint32_t to, bool udp)
{
    uint16_t c = (uint16_t)(b[0] << 8 | b[1]);
    if (udp && c == 0)
        return; // no UDP checksum
    c = csum_fix(c, from, to);
    if (udp && c == 0)
        c = 0xffff;
    b[0] = (uint8_t)(c >> 8), b[1] = (uint8_t)c;
}

// Replace address `from` by `to` in the source (off 12) or destination (16)
// of an IPv4 packet, with the IP and TCP/UDP checksums updated.
Ptr<Packet> rewrite(Ptr<const Packet> pkt, int off, uint32_t from, uint32_t to)
{
    uint32_t n = pkt->GetSize();
    std::vector<uint8_t> b(n);
    pkt->CopyData(b.data(), n);
    if (n < 20 || (b[0] >> 4) != 4)
        return pkt->Copy();
    uint32_t ihl = (uint32_t)(b[0] & 15) * 4;
    if (ihl < 20 || n < ihl || rd32(&b[off]) != from)
        return pkt->Copy();
    wr32(&b[off], to);
    fix16(&b[10], from, to, false);
    bool first = ((b[6] & 0x1f) << 8 | b[7]) == 0;
    if (first && b[9] == 6 && n >= ihl + 18)
        fix16(&b[ihl + 16], from, to, false);
    else if (first && b[9] == 17 && n >= ihl + 8)
        fix16(&b[ihl + 6], from, to, true);
    return Create<Packet>(b.data(), n);
}

uint32_t ip_of(const std::string &s)
{
    return Ipv4Address(s.c_str()).Get();
}

bool g_nat = false;       // LTE
uint32_t g_addr_a = 0;    // side a's TAP address
uint32_t g_ue_addr = 0;   // the address the EPC gave the UE
Address g_pgw_addr;       // the PGW's end of the link to side b

// ---- the link ----

struct Side {
    Ptr<Node> node;
    Ptr<FdNetDevice> fd;
    Ptr<NetDevice> link;      // the simulated link's device on this node
    Mac48Address tap_mac;     // the TAP's own MAC (frames out of this side's TAP go to it)
    uint64_t in_pk = 0, in_b = 0, out_pk = 0, out_b = 0, drop_other = 0, drop_tx = 0;
};

Side g_side[2];
Params g_p;
double g_extra_delay[2] = {0, 0}; // added on top of the channel's delay, per direction
Ptr<DeviceEnergyModel> g_energy;
Ptr<MobilityModel> g_peer_mobility; // what the device's distance is measured to
std::atomic<bool> g_stop{false};
double g_start_wall = 0;
uint64_t g_filler_rx = 0;

double mono()
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void deliver(int to, Ptr<Packet> pkt)
{
    Side &s = g_side[to];
    const Side &o = g_side[1 - to];
    g_lag.sample();
    uint32_t sz = pkt->GetSize();
    if (s.fd->SendFrom(pkt, o.tap_mac, s.tap_mac, ETH_IPV4)) {
        s.out_pk++;
        s.out_b += sz;
    }
}

bool gate_push(int s, Ptr<Packet> p, const Address &to);
bool gate_on(int s);

// A frame out of side i's TAP: across the simulated link.
bool from_tap(int i, Ptr<NetDevice>, Ptr<const Packet> pkt, uint16_t proto, const Address &, const Address &,
              NetDevice::PacketType)
{
    Side &s = g_side[i];
    if (proto != ETH_IPV4) {
        s.drop_other++;
        return true;
    }
    s.in_pk++;
    s.in_b += pkt->GetSize();
    Ptr<Packet> p = g_nat ? rewrite(pkt, i == 0 ? 12 : 16, g_addr_a, g_ue_addr) : pkt->Copy();
    Address to = g_nat ? (i == 0 ? Address(Mac48Address::GetBroadcast()) : g_pgw_addr) : g_side[1 - i].link->GetAddress();
    if (gate_on(i) ? !gate_push(i, p, to) : !s.link->Send(p, to, ETH_IPV4))
        s.drop_tx++;
    return true;
}

bool tap_rx_ignore(Ptr<NetDevice>, Ptr<const Packet>, uint16_t, const Address &)
{
    return true;
}

// A frame the simulated link delivered at side i: out of side i's TAP.
bool from_link(int i, Ptr<NetDevice>, Ptr<const Packet> pkt, uint16_t proto, const Address &)
{
    if (proto == ETH_FILLER) {
        g_filler_rx++;
        return true;
    }
    if (proto != ETH_IPV4)
        return true;
    int dir = 1 - i; // direction of travel: side 0 -> 1 is dir 0
    Ptr<Packet> p = g_nat ? rewrite(pkt, i == 0 ? 16 : 12, g_ue_addr, g_addr_a) : pkt->Copy();
    if (g_extra_delay[dir] > 0)
        Simulator::Schedule(Seconds(g_extra_delay[dir]), &deliver, i, p);
    else
        deliver(i, p);
    return true;
}

void queue_drop(int side, Ptr<const Packet>)
{
    g_side[side].drop_tx++;
}

// A trace-driven p2p direction: its packets wait here, not in the device's
// queue, and go to the device one at a time when it is idle and the trace's
// rate is above zero. (A PointToPointNetDevice fixes a packet's transmission
// time when it starts: one started inside a zero-rate segment would take
// forever, so zero-rate segments hold packets back instead.)
struct Gate {
    bool on = false, busy = false;
    double bps = 0;
    std::deque<std::pair<Ptr<Packet>, Address>> q;
    uint64_t bytes = 0;
    long max_p = 1000, max_b = 0;
};
Gate g_gate[2];

bool gate_on(int s)
{
    return g_gate[s].on;
}

void gate_kick(int s)
{
    Gate &g = g_gate[s];
    while (!g.busy && g.bps > 0 && !g.q.empty()) {
        auto pr = g.q.front();
        g.q.pop_front();
        g.bytes -= pr.first->GetSize();
        g.busy = true;
        if (!g_side[s].link->Send(pr.first, pr.second, ETH_IPV4)) {
            g_side[s].drop_tx++;
            g.busy = false;
        }
    }
}

void gate_tx_end(int s, Ptr<const Packet>)
{
    // after the device has finished its TransmitComplete
    Simulator::ScheduleNow(&gate_kick, s);
    g_gate[s].busy = false;
}

bool gate_push(int s, Ptr<Packet> p, const Address &to)
{
    Gate &g = g_gate[s];
    if (g.max_b > 0 ? g.bytes + p->GetSize() > (uint64_t)g.max_b : (long)g.q.size() >= g.max_p)
        return false;
    g.q.emplace_back(p, to);
    g.bytes += p->GetSize();
    gate_kick(s);
    return true;
}

// ---- rate traces (native format written by the backend: "start_s rate_mbit", "end PERIOD") ----

struct RateTrace {
    std::vector<double> t, bps;
    double period = 0;
};

bool read_native(const std::string &path, RateTrace &tr)
{
    std::ifstream f(path);
    if (!f)
        return fail("trace " + path + ": cannot open");
    std::string line;
    int ln = 0;
    while (std::getline(f, line)) {
        ln++;
        if (line.empty() || line[0] == '#')
            continue;
        std::istringstream ls(line);
        std::string a;
        ls >> a;
        if (a == "end") {
            if (!(ls >> tr.period))
                return fail(path + ":" + std::to_string(ln) + ": bad end line");
            continue;
        }
        double t = atof(a.c_str()), r;
        if (!(ls >> r))
            return fail(path + ":" + std::to_string(ln) + ": expected 'start_s rate_mbit'");
        tr.t.push_back(t);
        tr.bps.push_back(r * 1e6);
    }
    if (tr.t.empty() || !(tr.period > 0))
        return fail(path + ": empty trace or no end line");
    return true;
}

void set_rate(int s, double bps)
{
    g_gate[s].bps = bps;
    if (bps > 0) {
        DynamicCast<PointToPointNetDevice>(g_side[s].link)->SetDataRate(DataRate((uint64_t)bps));
        gate_kick(s);
    }
}

void trace_step(int s, std::shared_ptr<RateTrace> tr, size_t i, int loop, double base)
{
    set_rate(s, tr->bps[i]);
    size_t j = i + 1;
    double next;
    if (j < tr->t.size()) {
        next = base + tr->t[j];
    } else {
        if (!loop) {
            set_rate(s, 0); // the trace ran out: an outage from now on
            return;
        }
        base += tr->period;
        j = 0;
        next = base;
    }
    Simulator::Schedule(Seconds(next) - Simulator::Now(), &trace_step, s, tr, j, loop, base);
}

// ---- status ----

void status_line(const char *tag)
{
    char buf[1024];
    double e = g_energy ? g_energy->GetTotalEnergyConsumption() : NAN;
    double p50 = g_lag.pct(0.5), p99 = g_lag.pct(0.99);
    bool valid = g_lag.max_s <= g_p.lag_limit_s;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
                 ru.ru_stime.tv_usec * 1e-6;
    double dist = NAN;
    if (g_peer_mobility) // Wi-Fi: device to edge; LTE: UE to eNB
        dist = g_side[0].node->GetObject<MobilityModel>()->GetDistanceFrom(g_peer_mobility);
    int n = snprintf(buf, sizeof buf,
                     "%s sim_s=%.3f valid=%d lag_limit_ms=%.3f lag_max_ms=%.3f lag_p50_ms=%.3f lag_p99_ms=%.3f "
                     "lag_mean_ms=%.4f lag_samples=%llu lag_over=%llu cpu_s=%.3f "
                     "a_in_pk=%llu a_in_b=%llu b_out_pk=%llu b_out_b=%llu a_drop=%llu "
                     "b_in_pk=%llu b_in_b=%llu a_out_pk=%llu a_out_b=%llu b_drop=%llu "
                     "energy_j=%.6f distance_m=%.2f filler_rx=%llu\n",
                     tag, Simulator::Now().GetSeconds(), valid ? 1 : 0, g_p.lag_limit_s * 1e3, g_lag.max_s * 1e3,
                     p50 * 1e3, p99 * 1e3, g_lag.n ? g_lag.sum_s / (double)g_lag.n * 1e3 : 0.0,
                     (unsigned long long)g_lag.n, (unsigned long long)g_lag.over, cpu,
                     (unsigned long long)g_side[0].in_pk, (unsigned long long)g_side[0].in_b,
                     (unsigned long long)g_side[1].out_pk, (unsigned long long)g_side[1].out_b,
                     (unsigned long long)g_side[0].drop_tx, (unsigned long long)g_side[1].in_pk,
                     (unsigned long long)g_side[1].in_b, (unsigned long long)g_side[0].out_pk,
                     (unsigned long long)g_side[0].out_b, (unsigned long long)g_side[1].drop_tx, e, dist,
                     (unsigned long long)g_filler_rx);
    if (n > 0) {
        ssize_t w = write(1, buf, (size_t)std::min(n, (int)sizeof buf - 1));
        (void)w; // non-blocking: a reader that is not reading loses lines, never stalls the simulator
    }
}

void tick()
{
    g_lag.sample();
    double lag = g_lag.rt ? (g_lag.rt->RealtimeNow() - Simulator::Now()).GetSeconds() : 0;
    if (lag > g_p.lag_limit_s)
        g_lag.over++;
    static int k;
    if (++k % 20 == 0)
        status_line("status");
    if (g_stop.load()) {
        Simulator::Stop();
        return;
    }
    Simulator::Schedule(MilliSeconds(10), &tick);
}

// Competing stations: saturating-ish frames of 1500 bytes at `load` each towards B.
void filler(Ptr<NetDevice> dev, Address to, double interval)
{
    dev->Send(Create<Packet>(1500), to, ETH_FILLER);
    Simulator::Schedule(Seconds(interval), &filler, dev, to, interval);
}

// LTE: a downlink flow to another UE, injected at side b's end of the PGW wire.
void lte_filler(Ptr<NetDevice> wire, Address pgw, Ipv4Address ue, double interval)
{
    Ptr<Packet> p = Create<Packet>(1400);
    UdpHeader udp;
    udp.SetSourcePort(9);
    udp.SetDestinationPort(9);
    p->AddHeader(udp);
    Ipv4Header ip;
    ip.SetSource(Ipv4Address("1.0.0.2"));
    ip.SetDestination(ue);
    ip.SetProtocol(17);
    ip.SetTtl(64);
    ip.SetPayloadSize(p->GetSize());
    ip.EnableChecksum();
    p->AddHeader(ip);
    wire->Send(p, pgw, ETH_IPV4);
    Simulator::Schedule(Seconds(interval), &lte_filler, wire, pgw, ue, interval);
}

// ---- TAP ----

int tap_open(const std::string &ns, const std::string &name, Mac48Address *mac)
{
    int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    std::string path = "/run/netns/" + ns;
    int nsfd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (self < 0 || nsfd < 0 || setns(nsfd, CLONE_NEWNET)) {
        fail("cannot enter namespace " + ns + ": " + strerror(errno));
        if (self >= 0)
            close(self);
        if (nsfd >= 0)
            close(nsfd);
        return -1;
    }
    close(nsfd);
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    int e = errno;
    if (fd >= 0) {
        struct ifreq ifr;
        memset(&ifr, 0, sizeof ifr);
        ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
        snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name.c_str());
        if (ioctl(fd, TUNSETIFF, &ifr)) {
            e = errno;
            close(fd);
            fd = -1;
        } else {
            struct ifreq hw;
            memset(&hw, 0, sizeof hw);
            snprintf(hw.ifr_name, IFNAMSIZ, "%s", name.c_str());
            if (ioctl(fd, SIOCGIFHWADDR, &hw)) {
                e = errno;
                close(fd);
                fd = -1;
            } else {
                mac->CopyFrom((const uint8_t *)hw.ifr_hwaddr.sa_data);
            }
        }
    }
    if (setns(self, CLONE_NEWNET))
        perror("mecbed-ns3: cannot return to the original namespace");
    close(self);
    if (fd < 0)
        fail("TAP device " + name + " in " + ns + ": " + strerror(e));
    return fd;
}

std::string mac_str(const Mac48Address &m)
{
    std::ostringstream o;
    o << m;
    return o.str();
}

void status_now()
{
    status_line("now");
}

// Commands after "start": "status" (a status line tagged "now", written from
// the simulator thread), "stop" or EOF.
void stdin_watch()
{
    std::string line;
    char buf[256];
    for (;;) {
        ssize_t n = read(0, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        bool stop = false;
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] != '\n') {
                line += buf[i];
                continue;
            }
            if (line == "stop")
                stop = true;
            else if (line == "status")
                Simulator::ScheduleWithContext(0xffffffff, Seconds(0), &status_now);
            line.clear();
        }
        if (stop)
            break;
    }
    g_stop.store(true);
}

void usage()
{
    fprintf(stderr,
            "usage: mecbed-ns3 [--check] --model p2p|wifi [--extra K=V,...] [--rate-up BPS] [--rate-down BPS]\n"
            "                  [--delay-up S] [--delay-down S] [--loss-up P] [--loss-down P] [--queue-up N]\n"
            "                  [--queue-down N] [--queue-bytes-up N] [--queue-bytes-down N] [--trace-up FILE]\n"
            "                  [--trace-down FILE] [--trace-up-once] [--trace-down-once] [--mtu N] [--seed N]\n"
            "                  --ns-a NS --ns-b NS --if-a NAME --if-b NAME --addr-a IP --addr-b IP\n"
            "Carries one mecbed link through an ns-3 simulated link in real time (spawned by mecbed's\n"
            "ns3 link backend; docs/ns3.md).\n");
}

// The command line into g_p. Returns -1 to go on, else the exit status;
// *check: --check (validate only).
int parse_args(int argc, char **argv, bool *check, std::string *extra)
{
    Params &p = g_p;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto val = [&](void) -> std::string {
            if (i + 1 >= argc) {
                fprintf(stderr, "mecbed-ns3: %s needs a value\n", a.c_str());
                exit(2);
            }
            return argv[++i];
        };
        if (a == "--check")
            *check = true;
        else if (a == "--help" || a == "-h") {
            usage();
            return 0;
        } else if (a == "--model")
            p.model = val();
        else if (a == "--extra")
            *extra = val();
        else if (a == "--rate-up")
            p.rate_bps[0] = atof(val().c_str());
        else if (a == "--rate-down")
            p.rate_bps[1] = atof(val().c_str());
        else if (a == "--delay-up")
            p.delay_s[0] = atof(val().c_str());
        else if (a == "--delay-down")
            p.delay_s[1] = atof(val().c_str());
        else if (a == "--loss-up")
            p.loss[0] = atof(val().c_str());
        else if (a == "--loss-down")
            p.loss[1] = atof(val().c_str());
        else if (a == "--queue-up")
            p.queue_p[0] = atol(val().c_str());
        else if (a == "--queue-down")
            p.queue_p[1] = atol(val().c_str());
        else if (a == "--queue-bytes-up")
            p.queue_b[0] = atol(val().c_str());
        else if (a == "--queue-bytes-down")
            p.queue_b[1] = atol(val().c_str());
        else if (a == "--trace-up")
            p.trace[0] = val();
        else if (a == "--trace-down")
            p.trace[1] = val();
        else if (a == "--trace-up-once")
            p.trace_loop[0] = 0;
        else if (a == "--trace-down-once")
            p.trace_loop[1] = 0;
        else if (a == "--mtu")
            p.mtu = atoi(val().c_str());
        else if (a == "--seed")
            p.seed = (uint32_t)strtoul(val().c_str(), nullptr, 0);
        else if (a == "--ns-a")
            p.ns[0] = val();
        else if (a == "--ns-b")
            p.ns[1] = val();
        else if (a == "--if-a")
            p.ifname[0] = val();
        else if (a == "--if-b")
            p.ifname[1] = val();
        else if (a == "--addr-a")
            p.addr[0] = val();
        else if (a == "--addr-b")
            p.addr[1] = val();
        else {
            fprintf(stderr, "mecbed-ns3: unknown argument '%s'\n", a.c_str());
            usage();
            return 2;
        }
    }
    return -1;
}

// The protocol's error line; the backend reads it instead of "ready".
int report_error()
{
    printf("error %s\n", g_err.c_str());
    fflush(stdout);
    return 1;
}

// Like the emu backend's threads: a real-time priority (root; MECBED_NS3_RT=0
// turns it off) so busy neighbours do not make the simulator fall behind, and
// no timer slack. Threads made later (the FdNetDevice readers) inherit it.
void set_realtime()
{
    prctl(PR_SET_TIMERSLACK, 1UL);
    const char *rtenv = getenv("MECBED_NS3_RT");
    if (!rtenv || strcmp(rtenv, "0")) {
        struct sched_param sp;
        memset(&sp, 0, sizeof sp);
        sp.sched_priority = 20;
        sched_setscheduler(0, SCHED_FIFO, &sp);
    }
}

// A and B, each with an FdNetDevice on its side's TAP.
void create_tap_nodes(NodeContainer &nodes, const int tapfd[2])
{
    nodes.Create(2);
    for (int s = 0; s < 2; s++) {
        g_side[s].node = nodes.Get(s);
        Ptr<FdNetDevice> fd = CreateObject<FdNetDevice>();
        fd->SetAddress(Mac48Address::Allocate());
        fd->SetMtu((uint16_t)g_p.mtu);
        fd->SetFileDescriptor(tapfd[s]);
        nodes.Get(s)->AddDevice(fd);
        fd->SetReceiveCallback(MakeCallback(&tap_rx_ignore));
        fd->SetPromiscReceiveCallback(MakeBoundCallback(&from_tap, s));
        g_side[s].fd = fd;
    }
}

// Point-to-point: per-direction rate, queue, loss and an optional rate trace.
bool build_p2p(NodeContainer &nodes)
{
    Params &p = g_p;
    // the channel has one delay; the longer direction gets the difference added at delivery
    double dmin = std::min(p.delay_s[0], p.delay_s[1]);
    g_extra_delay[0] = p.delay_s[0] - dmin;
    g_extra_delay[1] = p.delay_s[1] - dmin;
    PointToPointHelper h;
    h.SetChannelAttribute("Delay", TimeValue(Seconds(dmin)));
    h.SetDeviceAttribute("Mtu", UintegerValue((uint16_t)p.mtu));
    NetDeviceContainer devs = h.Install(nodes.Get(0), nodes.Get(1));
    for (int s = 0; s < 2; s++) {
        Ptr<PointToPointNetDevice> d = DynamicCast<PointToPointNetDevice>(devs.Get(s));
        d->SetDataRate(DataRate((uint64_t)(p.rate_bps[s] > 0 ? p.rate_bps[s] : 100e9)));
        // queue of the sending side's device (default 1000 packets, the link grammar's default and emu's)
        std::string qs = p.queue_b[s] > 0 ? std::to_string(p.queue_b[s]) + "B"
                                           : std::to_string(p.queue_p[s] > 0 ? p.queue_p[s] : 1000) + "p";
        Ptr<Queue<Packet>> q = d->GetQueue();
        q->SetAttribute("MaxSize", QueueSizeValue(QueueSize(qs)));
        q->TraceConnectWithoutContext("Drop", MakeBoundCallback(&queue_drop, s));
        if (p.loss[s] > 0) {
            Ptr<RateErrorModel> em = CreateObject<RateErrorModel>();
            em->SetAttribute("ErrorUnit", StringValue("ERROR_UNIT_PACKET"));
            em->SetAttribute("ErrorRate", DoubleValue(p.loss[s]));
            devs.Get(1 - s)->SetAttribute("ReceiveErrorModel", PointerValue(em));
        }
        if (!p.trace[s].empty()) {
            auto tr = std::make_shared<RateTrace>();
            if (!read_native(p.trace[s], *tr))
                return false;
            Gate &g = g_gate[s];
            g.on = true;
            g.max_p = p.queue_p[s] > 0 ? p.queue_p[s] : 1000;
            g.max_b = p.queue_b[s];
            d->TraceConnectWithoutContext("PhyTxEnd", MakeBoundCallback(&gate_tx_end, s));
            Simulator::Schedule(Seconds(0), &trace_step, s, tr, (size_t)0, p.trace_loop[s], 0.0);
        }
        g_side[s].link = d;
    }
    return true;
}

// Wi-Fi's rate control as the extra= options chose it.
void wifi_set_manager(WifiHelper &wifi, WifiStandard st)
{
    const Params &p = g_p;
    bool ht = st != WIFI_STANDARD_80211a;
    if (p.manager == "minstrel")
        wifi.SetRemoteStationManager(ht ? "ns3::MinstrelHtWifiManager" : "ns3::MinstrelWifiManager");
    else if (p.manager == "ideal")
        wifi.SetRemoteStationManager("ns3::IdealWifiManager");
    else if (p.manager == "aarf")
        wifi.SetRemoteStationManager("ns3::AarfWifiManager");
    else
        wifi.SetRemoteStationManager("ns3::ConstantRateWifiManager", "DataMode", StringValue(p.mode),
                                     "ControlMode", StringValue(ht ? (st == WIFI_STANDARD_80211n ? "HtMcs0" : "VhtMcs0")
                                                                   : "OfdmRate6Mbps"));
}

// Mobility: B (edge) at the origin; A (device) at distance, walking away along x;
// competing stations on a circle of 10 m around B.
void wifi_place(NodeContainer &all, int n)
{
    const Params &p = g_p;
    for (int k = 0; k < n; k++) {
        Ptr<Node> nd = all.Get(k);
        if (k == 0) {
            Ptr<ConstantVelocityMobilityModel> m = CreateObject<ConstantVelocityMobilityModel>();
            m->SetPosition(Vector(p.distance_m, 0, 0));
            m->SetVelocity(Vector(p.speed_mps, 0, 0));
            nd->AggregateObject(m);
        } else {
            Ptr<ConstantPositionMobilityModel> m = CreateObject<ConstantPositionMobilityModel>();
            double ang = k == 1 ? 0 : 2 * M_PI * (k - 2) / std::max(1, p.stations) + 0.5;
            double r = k == 1 ? 0 : 10;
            m->SetPosition(Vector(r * std::cos(ang), r * std::sin(ang), 0));
            nd->AggregateObject(m);
        }
    }
}

// Ad hoc Wi-Fi between A and B, with competing stations and A's radio energy.
void build_wifi(NodeContainer &nodes)
{
    Params &p = g_p;
    g_extra_delay[0] = p.delay_s[0];
    g_extra_delay[1] = p.delay_s[1];
    int n = 2 + p.stations;
    NodeContainer all;
    all.Add(nodes);
    NodeContainer others;
    others.Create(p.stations);
    all.Add(others);
    WifiHelper wifi;
    WifiStandard st = p.standard == "80211a"   ? WIFI_STANDARD_80211a
                      : p.standard == "80211n" ? WIFI_STANDARD_80211n
                                               : WIFI_STANDARD_80211ac;
    wifi.SetStandard(st);
    wifi_set_manager(wifi, st);
    YansWifiChannelHelper ch = YansWifiChannelHelper::Default();
    YansWifiPhyHelper phy;
    phy.SetChannel(ch.Create());
    phy.Set("TxPowerStart", DoubleValue(p.txpower_dbm));
    phy.Set("TxPowerEnd", DoubleValue(p.txpower_dbm));
    if (st == WIFI_STANDARD_80211n)
        phy.Set("ChannelSettings", StringValue("{0, 20, BAND_5GHZ, 0}"));
    WifiMacHelper mac;
    mac.SetType("ns3::AdhocWifiMac");
    NetDeviceContainer devs = wifi.Install(phy, mac, all);
    wifi.AssignStreams(devs, (int64_t)p.seed);
    wifi_place(all, n);
    // the device's radio energy (ns-3's Wi-Fi radio energy model, default currents, 3 V source)
    BasicEnergySourceHelper src;
    src.Set("BasicEnergySourceInitialEnergyJ", DoubleValue(1e9));
    EnergySourceContainer sources = src.Install(nodes.Get(0));
    WifiRadioEnergyModelHelper rh;
    DeviceEnergyModelContainer dem = rh.Install(devs.Get(0), sources);
    g_energy = dem.Get(0);
    g_peer_mobility = nodes.Get(1)->GetObject<MobilityModel>();
    for (int s = 0; s < 2; s++) {
        g_side[s].link = devs.Get(s);
        Ptr<WifiNetDevice> wd = DynamicCast<WifiNetDevice>(devs.Get(s));
        wd->GetMac()->TraceConnectWithoutContext("MacTxDrop", MakeBoundCallback(&queue_drop, s));
    }
    for (int k = 0; k < p.stations; k++) {
        double interval = 1500.0 * 8 / p.load_bps;
        Simulator::Schedule(Seconds(0.001 * (k + 1)), &filler, devs.Get(2 + k), devs.Get(1)->GetAddress(), interval);
    }
}

// LTE: the PGW joined to side b by a fast wire with no delay of its own
// (delay= adds one); returns the wire's devices (PGW end, b end).
NetDeviceContainer lte_pgw_wire(Ptr<Node> pgw, Ptr<Node> b)
{
    PointToPointHelper wire;
    wire.SetDeviceAttribute("DataRate", DataRateValue(DataRate("100Gb/s")));
    wire.SetDeviceAttribute("Mtu", UintegerValue(1500));
    wire.SetChannelAttribute("Delay", TimeValue(Seconds(0)));
    NetDeviceContainer w = wire.Install(pgw, b);
    // only the PGW's end gets an address (side b's node is a relay, with no IP stack)
    Ptr<Ipv4> pgw_ip = pgw->GetObject<Ipv4>();
    int32_t wi = pgw_ip->AddInterface(w.Get(0));
    pgw_ip->AddAddress(wi, Ipv4InterfaceAddress(Ipv4Address("1.0.0.1"), Ipv4Mask("255.0.0.0")));
    pgw_ip->SetUp(wi);
    Ipv4StaticRoutingHelper srh;
    // the b side's subnet is reached over that wire
    std::string net = g_p.addr[0].substr(0, g_p.addr[0].rfind('.')) + ".0";
    srh.GetStaticRouting(pgw_ip)->AddNetworkRouteTo(Ipv4Address(net.c_str()), Ipv4Mask("255.255.255.0"),
                                                      (uint32_t)wi);
    g_pgw_addr = w.Get(0)->GetAddress();
    return w;
}

// LTE positions: the eNB at the origin, the device's UE at distance walking
// away along x, other UEs on a circle of `distance` around the eNB.
void lte_place(NodeContainer &nodes, NodeContainer &enb, NodeContainer &others)
{
    const Params &p = g_p;
    Ptr<ConstantPositionMobilityModel> em = CreateObject<ConstantPositionMobilityModel>();
    em->SetPosition(Vector(0, 0, 0));
    enb.Get(0)->AggregateObject(em);
    g_peer_mobility = em;
    Ptr<ConstantVelocityMobilityModel> um = CreateObject<ConstantVelocityMobilityModel>();
    um->SetPosition(Vector(p.distance_m, 0, 0));
    um->SetVelocity(Vector(p.speed_mps, 0, 0));
    nodes.Get(0)->AggregateObject(um);
    Ptr<ConstantPositionMobilityModel> bm = CreateObject<ConstantPositionMobilityModel>();
    nodes.Get(1)->AggregateObject(bm);
    for (uint32_t k = 0; k < others.GetN(); k++) {
        Ptr<ConstantPositionMobilityModel> m = CreateObject<ConstantPositionMobilityModel>();
        double ang = 2 * M_PI * (k + 1) / (double)(others.GetN() + 1);
        m->SetPosition(Vector(p.distance_m * std::cos(ang), p.distance_m * std::sin(ang), 0));
        others.Get(k)->AggregateObject(m);
    }
}

// LTE: LENA with the EPC; side a is the UE, side b a host behind the PGW.
void build_lte(NodeContainer &nodes)
{
    Params &p = g_p;
    g_extra_delay[0] = p.delay_s[0];
    g_extra_delay[1] = p.delay_s[1];
    if (p.addr[0].empty())
        p.addr[0] = "10.201.0.1";
    // the helpers must live as long as the simulation (they own the EPC's pieces)
    static Ptr<LteHelper> lte = CreateObject<LteHelper>();
    static Ptr<PointToPointEpcHelper> epc = CreateObject<PointToPointEpcHelper>();
    lte->SetEpcHelper(epc);
    lte->SetEnbDeviceAttribute("DlBandwidth", UintegerValue((uint16_t)p.lte_rbs));
    lte->SetEnbDeviceAttribute("UlBandwidth", UintegerValue((uint16_t)p.lte_rbs));
    NetDeviceContainer w = lte_pgw_wire(epc->GetPgwNode(), nodes.Get(1));
    NodeContainer enb;
    enb.Create(1);
    NodeContainer others;
    others.Create((uint32_t)p.lte_ues);
    lte_place(nodes, enb, others);
    NodeContainer ues(nodes.Get(0));
    ues.Add(others);
    NetDeviceContainer enbd = lte->InstallEnbDevice(enb);
    NetDeviceContainer ued = lte->InstallUeDevice(ues);
    InternetStackHelper inet;
    inet.Install(ues); // the EPC gives each UE an address through its IP stack
    Ipv4InterfaceContainer uei = epc->AssignUeIpv4Address(ued);
    g_ue_addr = uei.GetAddress(0).Get();
    g_addr_a = ip_of(p.addr[0]);
    g_nat = true;
    lte->Attach(ued, enbd.Get(0));
    for (uint32_t k = 1; k < ues.GetN(); k++)
        Simulator::Schedule(Seconds(0.1 + 0.001 * k), &lte_filler, w.Get(1), w.Get(0)->GetAddress(),
                            uei.GetAddress(k), 1400.0 * 8 / p.load_bps);
    g_side[0].link = ued.Get(0);
    g_side[1].link = w.Get(1);
}

// Wait on stdin for "start" (addresses and routes are set by then); false
// when the backend said "stop" or went away first.
bool wait_for_start()
{
    std::string line;
    char c;
    for (;;) {
        ssize_t r = read(0, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        if (c == '\n') {
            if (line == "start")
                return true;
            if (line == "stop")
                return false;
            line.clear();
        } else {
            line += c;
        }
    }
}

[[noreturn]] void run_simulation()
{
    // status lines must never block the simulator
    fcntl(1, F_SETFL, fcntl(1, F_GETFL) | O_NONBLOCK);
    std::thread watcher(stdin_watch);
    watcher.detach();

    g_lag.rt = DynamicCast<RealtimeSimulatorImpl>(Simulator::GetImplementation());
    g_start_wall = mono();
    Simulator::Schedule(MilliSeconds(10), &tick);
    printf("running\n");
    fflush(stdout);
    Simulator::Run();
    status_line("final");
    // the TAP fds close with the process (the devices go with them); skip
    // Simulator::Destroy, which would join the FdNetDevice reader threads
    fflush(stdout);
    _exit(0);
}

} // namespace

int main(int argc, char **argv)
{
    bool check = false;
    std::string extra;
    Params &p = g_p;
    int rc = parse_args(argc, argv, &check, &extra);
    if (rc >= 0)
        return rc;
    if (!parse_extra(extra, p) || !validate(p)) {
        if (check) {
            fprintf(stderr, "%s\n", g_err.c_str());
            return 2;
        }
        return report_error();
    }
    if (check)
        return 0;
    if (p.ns[0].empty() || p.ns[1].empty() || p.ifname[0].empty() || p.ifname[1].empty()) {
        usage();
        return 2;
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    set_realtime();

    // TAPs first (their fds are what the simulation needs)
    int tapfd[2];
    for (int s = 0; s < 2; s++) {
        tapfd[s] = tap_open(p.ns[s], p.ifname[s], &g_side[s].tap_mac);
        if (tapfd[s] < 0)
            return report_error();
    }

    GlobalValue::Bind("SimulatorImplementationType", StringValue("ns3::RealtimeSimulatorImpl"));
    GlobalValue::Bind("ChecksumEnabled", BooleanValue(true));
    Config::SetDefault("ns3::RealtimeSimulatorImpl::SynchronizationMode", StringValue("BestEffort"));
    RngSeedManager::SetSeed(p.seed ? p.seed : 1);

    NodeContainer nodes;
    create_tap_nodes(nodes, tapfd);
    if (p.model == "p2p") {
        if (!build_p2p(nodes))
            return report_error();
    } else if (p.model == "wifi") {
        build_wifi(nodes);
    } else {
        build_lte(nodes);
    }
    for (int s = 0; s < 2; s++) {
        g_side[s].link->SetReceiveCallback(MakeBoundCallback(&from_link, s));
        g_side[s].link->SetPromiscReceiveCallback(NetDevice::PromiscReceiveCallback());
    }

    printf("ready %s %s\n", mac_str(g_side[0].tap_mac).c_str(), mac_str(g_side[1].tap_mac).c_str());
    fflush(stdout);
    if (!wait_for_start())
        return 0; // the backend stopped or went away before starting
    run_simulation();
}
