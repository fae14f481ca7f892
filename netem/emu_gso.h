/* GSO on the emulator's TUN devices (netem/emu_gso.c). With IFF_VNET_HDR and
 * TSO offloads (TUNSETOFFLOAD) the sender's kernel hands the emulator TCP
 * super-packets of up to 64 KB, each preceded by a virtio_net_hdr. The
 * emulator cuts one into the wire packets the kernel would have sent
 * (emu_gso_segment: the same headers, IP ids, sequence numbers, flags and
 * lengths), so that loss, queue limits, AQM, rate and trace see exactly those
 * packets; on delivery, consecutive segments of one super-packet that are due
 * at once go out in one write (emu_gso_merge), which the receiver's stack
 * takes as one GRO packet. Checksums stay partial (the kernel's
 * CHECKSUM_PARTIAL, as the virtio header says); emu_csum_finish completes one
 * where a packet must carry a real checksum (a corrupted one, a pcap log). */
#ifndef MECBED_NETEM_EMU_GSO_H
#define MECBED_NETEM_EMU_GSO_H

#include <stddef.h>
#include <stdint.h>

#define EMU_VNET_HDR_LEN 10 /* struct virtio_net_hdr, the TUN default */

/* virtio_net_hdr, host byte order (a TUN's default on little-endian hosts) */
typedef struct emu_vnet {
    uint8_t flags;     /* VIRTIO_NET_HDR_F_NEEDS_CSUM, _DATA_VALID */
    uint8_t gso_type;  /* VIRTIO_NET_HDR_GSO_* */
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
} emu_vnet;

void emu_vnet_get(emu_vnet *v, const uint8_t *b);
void emu_vnet_put(const emu_vnet *v, uint8_t *b);

/* A parsed TCP super-packet, or UDP GSO packet (udp: datagrams of mss
 * bytes of data each, the last possibly shorter), or a plain packet when
 * nseg == 1. */
typedef struct emu_gso {
    int v6, udp;
    size_t l4off;  /* offset of the TCP header */
    size_t hlen;   /* IP + TCP header bytes */
    size_t mss;    /* payload bytes per segment (the last may be shorter) */
    size_t payload;
    size_t nseg;
} emu_gso;

/* Parse packet pkt[0..len) with header v. 1: a TCP or UDP (USO,
 * EMU_GSO_UDP_L4) GSO packet that emu_gso_segment can cut (g filled); 0: not
 * a GSO packet (pass it as it is); -1: a GSO packet the emulator cannot cut
 * (malformed, IPv6 extension headers, or another GSO type). */
int emu_gso_parse(const emu_vnet *v, const uint8_t *pkt, size_t len, emu_gso *g);
/* Segment k of g into out (room for g->hlen + g->mss bytes): its length.
 * Partial checksum (as the kernel's TSO and USO leave it). */
size_t emu_gso_segment(const emu_gso *g, const uint8_t *pkt, size_t k, uint8_t *out);
/* Turn the first of n consecutive segments (headers in first, hlen bytes,
 * the last segment's TCP flags in last_flags) into the header of the
 * super-packet of total length total: lengths, IP checksum, FIN/PSH, the
 * partial TCP checksum. Fills v for the write (a GSO header when n > 1). */
void emu_gso_merge(uint8_t *first, int v6, size_t l4off, size_t hlen, size_t mss, size_t total, size_t n,
                   uint8_t last_flags, emu_vnet *v);
/* UDP datagrams (IPv4 without options, unfragmented, partial checksum)
 * that arrive one by one can leave together as a UDP GSO packet (the
 * receiver's stack cuts it into the same datagrams again): consecutive
 * datagrams of one flow, all of the first's size but the last. */
#define EMU_GSO_UDP_L4 5 /* VIRTIO_NET_HDR_GSO_UDP_L4 (newer headers) */
int emu_udp_mergeable(const emu_vnet *v, const uint8_t *pkt, size_t len);
int emu_udp_same_flow(const uint8_t *a, const uint8_t *b);
/* Turn the first of n datagrams into the header of their merged packet of
 * total bytes (seg_payload bytes of data per datagram); fills v. */
void emu_udp_merge(uint8_t *first, size_t total, size_t seg_payload, size_t n, emu_vnet *v);
/* Complete a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM) in place. */
void emu_csum_finish(uint8_t *pkt, size_t len, size_t csum_start, size_t csum_offset);

#endif
