/* GSO super-packets on the emulator's TUN devices (see emu_gso.h). What the
 * kernel's TCP segmentation does (net/ipv4/tcp_offload.c, inet_gso_segment)
 * is done here in user space (and its UDP segmentation, udp_offload.c: each
 * datagram its own IP length and id, UDP length and partial checksum), so that every wire packet passes the link's
 * pipeline on its own: each segment has the super-packet's headers with its
 * own IP length, IPv4 id (incremented per segment) and checksum, TCP
 * sequence number, FIN/PSH on the last segment only and CWR on the first
 * only, and a partial TCP checksum (the pseudo-header sum over its length). */
#include <linux/virtio_net.h>
#include <string.h>

#include "emu_gso.h"

#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80

void emu_vnet_get(emu_vnet *v, const uint8_t *b)
{
    v->flags = b[0];
    v->gso_type = b[1];
    memcpy(&v->hdr_len, b + 2, 2);
    memcpy(&v->gso_size, b + 4, 2);
    memcpy(&v->csum_start, b + 6, 2);
    memcpy(&v->csum_offset, b + 8, 2);
}

void emu_vnet_put(const emu_vnet *v, uint8_t *b)
{
    b[0] = v->flags;
    b[1] = v->gso_type;
    memcpy(b + 2, &v->hdr_len, 2);
    memcpy(b + 4, &v->gso_size, 2);
    memcpy(b + 6, &v->csum_start, 2);
    memcpy(b + 8, &v->csum_offset, 2);
}

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void wr16(uint8_t *p, uint32_t x)
{
    p[0] = (uint8_t)(x >> 8);
    p[1] = (uint8_t)x;
}

static uint32_t sum16(const uint8_t *p, size_t n, uint32_t s)
{
    for (; n > 1; p += 2, n -= 2)
        s += rd16(p);
    if (n)
        s += (uint32_t)p[0] << 8;
    return s;
}

static uint16_t fold(uint32_t s)
{
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)s;
}

static void ip4_csum(uint8_t *ip)
{
    size_t ihl = (size_t)(ip[0] & 15) * 4;
    wr16(ip + 10, 0);
    wr16(ip + 10, (uint16_t)~fold(sum16(ip, ihl, 0)));
}

/* the partial checksum the kernel leaves in a TCP or UDP header
 * (CHECKSUM_PARTIAL): the pseudo-header sum over a transport length of
 * l4len, not complemented, at the header's checksum field */
static void l4_partial(uint8_t *pkt, int v6, size_t l4off, size_t l4len, int proto, size_t field)
{
    uint32_t s = v6 ? sum16(pkt + 8, 32, 0) : sum16(pkt + 12, 8, 0);
    s += (uint32_t)proto + (uint32_t)(l4len >> 16) + (uint32_t)(l4len & 0xffff);
    wr16(pkt + l4off + field, fold(s));
}

static void tcp_partial(uint8_t *pkt, int v6, size_t l4off, size_t l4len)
{
    l4_partial(pkt, v6, l4off, l4len, 6, 16);
}

static void set_ip_len(uint8_t *pkt, int v6, size_t total)
{
    if (v6) {
        wr16(pkt + 4, (uint32_t)(total - 40));
    } else {
        wr16(pkt + 2, (uint32_t)total);
        ip4_csum(pkt);
    }
}

int emu_gso_parse(const emu_vnet *v, const uint8_t *pkt, size_t len, emu_gso *g)
{
    int type = v->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
    if (type == VIRTIO_NET_HDR_GSO_NONE)
        return 0;
    if (type != VIRTIO_NET_HDR_GSO_TCPV4 && type != VIRTIO_NET_HDR_GSO_TCPV6 && type != EMU_GSO_UDP_L4)
        return -1;
    memset(g, 0, sizeof *g);
    g->udp = type == EMU_GSO_UDP_L4;
    int proto = g->udp ? 17 : 6;
    if (len < 40)
        return -1;
    g->v6 = g->udp ? (pkt[0] >> 4) == 6 : type == VIRTIO_NET_HDR_GSO_TCPV6;
    if ((pkt[0] >> 4) != (g->v6 ? 6 : 4))
        return -1;
    if (g->v6) {
        if (pkt[6] != proto) /* extension headers: not cut here */
            return -1;
        g->l4off = 40;
    } else {
        g->l4off = (size_t)(pkt[0] & 15) * 4;
        if (g->l4off < 20 || pkt[9] != proto)
            return -1;
    }
    if (len < g->l4off + (g->udp ? 8 : 20))
        return -1;
    size_t l4h = g->udp ? 8 : (size_t)(pkt[g->l4off + 12] >> 4) * 4;
    g->hlen = g->l4off + l4h;
    g->mss = v->gso_size;
    if (l4h < 8 || g->hlen > len || g->mss == 0)
        return -1;
    g->payload = len - g->hlen;
    g->nseg = g->payload ? (g->payload + g->mss - 1) / g->mss : 1;
    return 1;
}

size_t emu_gso_segment(const emu_gso *g, const uint8_t *pkt, size_t k, uint8_t *out)
{
    size_t off = k * g->mss, sl = g->payload - off < g->mss ? g->payload - off : g->mss;
    memcpy(out, pkt, g->hlen);
    memcpy(out + g->hlen, pkt + g->hlen + off, sl);
    size_t total = g->hlen + sl;
    if (!g->v6)
        wr16(out + 4, rd16(pkt + 4) + (uint32_t)k); /* the IPv4 id, one per segment */
    set_ip_len(out, g->v6, total);
    if (g->udp) { /* a datagram: its own UDP length and partial checksum */
        wr16(out + g->l4off + 4, (uint32_t)(total - g->l4off));
        l4_partial(out, g->v6, g->l4off, total - g->l4off, 17, 6);
        return total;
    }
    uint8_t *th = out + g->l4off;
    uint32_t seq = (uint32_t)th[4] << 24 | (uint32_t)th[5] << 16 | (uint32_t)th[6] << 8 | th[7];
    seq += (uint32_t)off;
    th[4] = (uint8_t)(seq >> 24), th[5] = (uint8_t)(seq >> 16), th[6] = (uint8_t)(seq >> 8), th[7] = (uint8_t)seq;
    if (k + 1 < g->nseg)
        th[13] &= (uint8_t)~(TCP_FIN | TCP_PSH);
    if (k > 0)
        th[13] &= (uint8_t)~TCP_CWR;
    tcp_partial(out, g->v6, g->l4off, total - g->l4off);
    return total;
}

void emu_gso_merge(uint8_t *first, int v6, size_t l4off, size_t hlen, size_t mss, size_t total, size_t n,
                   uint8_t last_flags, emu_vnet *v)
{
    uint8_t *th = first + l4off;
    th[13] = (uint8_t)((th[13] & ~(TCP_FIN | TCP_PSH)) | (last_flags & (TCP_FIN | TCP_PSH)));
    set_ip_len(first, v6, total);
    tcp_partial(first, v6, l4off, total - l4off);
    memset(v, 0, sizeof *v);
    v->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    v->csum_start = (uint16_t)l4off;
    v->csum_offset = 16;
    v->hdr_len = (uint16_t)hlen;
    if (n > 1) {
        v->gso_type = v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
        if (th[13] & TCP_CWR)
            v->gso_type |= VIRTIO_NET_HDR_GSO_ECN;
        v->gso_size = (uint16_t)mss;
    }
}

void emu_csum_finish(uint8_t *pkt, size_t len, size_t csum_start, size_t csum_offset)
{
    if (csum_start + csum_offset + 2 > len)
        return;
    uint16_t c = (uint16_t)~fold(sum16(pkt + csum_start, len - csum_start, 0));
    wr16(pkt + csum_start + csum_offset, c ? c : 0xffff);
}

int emu_udp_mergeable(const emu_vnet *v, const uint8_t *pkt, size_t len)
{
    return v->gso_type == VIRTIO_NET_HDR_GSO_NONE && (v->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
           v->csum_start == 20 && v->csum_offset == 6 && len > 28 && pkt[0] == 0x45 && pkt[9] == 17 &&
           !(pkt[6] & 0x3f) && !pkt[7] && (size_t)rd16(pkt + 2) == len && (size_t)rd16(pkt + 24) == len - 20;
}

int emu_udp_same_flow(const uint8_t *a, const uint8_t *b)
{
    return a[1] == b[1] && a[8] == b[8] && !memcmp(a + 12, b + 12, 8) && !memcmp(a + 20, b + 20, 4);
}

void emu_udp_merge(uint8_t *first, size_t total, size_t seg_payload, size_t n, emu_vnet *v)
{
    set_ip_len(first, 0, total);
    wr16(first + 24, (uint32_t)(total - 20));
    l4_partial(first, 0, 20, total - 20, 17, 6);
    memset(v, 0, sizeof *v);
    v->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    v->csum_start = 20;
    v->csum_offset = 6;
    v->hdr_len = 28;
    if (n > 1) {
        v->gso_type = EMU_GSO_UDP_L4;
        v->gso_size = (uint16_t)seg_payload;
    }
}
