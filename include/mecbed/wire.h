/* mecbed: the wire protocol between the device runner and edge/cloud nodes
 * (docs/protocol.md). Versioned, length-prefixed frames over TCP:
 *
 *   header (16 bytes, little-endian):
 *     u32 magic "MBWP"   u8 version   u8 type   u16 reserved (0)
 *     u32 payload length u32 frame (inference frame number; 0 outside frames)
 *   payload (type-specific, little-endian, strings as u16 length + bytes)
 *
 * Readers check the magic, the version, that the type is expected in the
 * connection's state, and the length against the type's limit before they
 * allocate anything; a tensor's header is checked against the plan (step,
 * op, region, dtype, shape, byte count) before its data is read. Any
 * violation is reported as an error (the caller sends an ERROR frame and
 * closes the connection); nothing is allocated beyond what the plan allows. */
#ifndef MECBED_WIRE_H
#define MECBED_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "mecbed/graph.h"
#include "mecbed/plan.h"
#include "mecbed/topology.h"

#define MB_WIRE_MAGIC 0x5057424du /* "MBWP" as bytes on the wire */
#define MB_WIRE_VERSION 3
#define MB_WIRE_NONCE 32   /* handshake nonces */
#define MB_WIRE_MAC 32     /* HMAC-SHA256 */
/* mb_wire_hdr_decode's (and mb_wire_recv's) return value for a frame of
 * another protocol version: the caller answers ERROR MB_WERR_VERSION. */
#define MB_WIRE_EVERSION (-2)
#define MB_WIRE_HDR_LEN 16

/* Limits, checked before allocation. */
#define MB_WIRE_MAX_STR 1024          /* any string field */
#define MB_WIRE_MAX_HELLO 4096
#define MB_WIRE_MAX_ERROR 4096
#define MB_WIRE_MAX_STEPS (1 << 20)   /* plan steps */
#define MB_WIRE_MAX_PLAN (64u << 20)
#define MB_WIRE_MAX_EVENTS (1 << 20)  /* events in one RESULT */
#define MB_WIRE_MAX_RESULT (64u << 20)
#define MB_WIRE_MAX_TENSOR (1u << 30) /* absolute cap; the plan sets the real one */

typedef enum mb_msg_type {
    MB_MSG_HELLO = 1,  /* either side: protocol, role, model, graph hash, clock */
    MB_MSG_PLAN = 2,   /* runner -> node: the plan, the node's site, every site's address */
    MB_MSG_READY = 3,  /* node -> runner: plan accepted, data connections open */
    MB_MSG_FRAME = 4,  /* runner -> node: frame `frame` starts */
    MB_MSG_TENSOR = 5, /* sender -> receiver: one SEND step's region */
    MB_MSG_RESULT = 6, /* node -> runner: the node's part of a frame is done; its timeline */
    MB_MSG_ERROR = 7,  /* either side: code + message; the connection closes after it */
    MB_MSG_BYE = 8,    /* either side: orderly end */
    MB_MSG_CHALLENGE = 9, /* server -> client: auth mode, the server's nonce (handshake) */
    MB_MSG_AUTH = 10,  /* both: HMAC-SHA256 over the handshake transcript */
    MB_MSG_PING = 11,  /* runner -> node: keep an idle session alive */
    MB_MSG_COUNT
} mb_msg_type;

/* Bit set of message types (1u << type) a reader accepts in its state. */
#define MB_MSG_BIT(t) (1u << (t))

enum { MB_WIRE_ROLE_RUNNER = 0, MB_WIRE_ROLE_NODE = 1, MB_WIRE_ROLE_PEER = 2 };
enum { MB_DTYPE_F32 = 1 };
enum {
    MB_WERR_PROTOCOL = 1, /* malformed or unexpected frame */
    MB_WERR_VERSION = 2,
    MB_WERR_MODEL = 3,    /* model unknown or hash mismatch */
    MB_WERR_PLAN = 4,     /* plan invalid for this model */
    MB_WERR_COMPUTE = 5,
    MB_WERR_PEER = 6,     /* a peer connection failed */
    MB_WERR_TIMEOUT = 7,
    MB_WERR_AUTH = 8      /* authentication failed or required */
};
enum { MB_AUTH_NONE = 0, MB_AUTH_HMAC_SHA256 = 1 }; /* CHALLENGE mode */

const char *mb_msg_name(int type);

/* ---- framing ---- */

typedef struct mb_wire_hdr {
    uint8_t version, type;
    uint32_t len;
    uint32_t frame;
} mb_wire_hdr;

/* Growable output buffer for payloads. */
typedef struct mb_wbuf {
    uint8_t *p;
    size_t len, cap;
    int oom;
} mb_wbuf;

void mb_wbuf_init(mb_wbuf *b);
void mb_wbuf_free(mb_wbuf *b);
void mb_wbuf_u8(mb_wbuf *b, uint8_t v);
void mb_wbuf_u16(mb_wbuf *b, uint16_t v);
void mb_wbuf_u32(mb_wbuf *b, uint32_t v);
void mb_wbuf_u64(mb_wbuf *b, uint64_t v);
void mb_wbuf_i64(mb_wbuf *b, int64_t v);
void mb_wbuf_f64(mb_wbuf *b, double v);
void mb_wbuf_str(mb_wbuf *b, const char *s); /* truncated at MB_WIRE_MAX_STR */
void mb_wbuf_bytes(mb_wbuf *b, const void *p, size_t n);

/* Bounds-checked payload reader: any read past the end sets bad and yields 0. */
typedef struct mb_rbuf {
    const uint8_t *p;
    size_t len, pos;
    int bad;
} mb_rbuf;

void mb_rbuf_init(mb_rbuf *r, const void *p, size_t len);
uint8_t mb_rbuf_u8(mb_rbuf *r);
uint16_t mb_rbuf_u16(mb_rbuf *r);
uint32_t mb_rbuf_u32(mb_rbuf *r);
uint64_t mb_rbuf_u64(mb_rbuf *r);
int64_t mb_rbuf_i64(mb_rbuf *r);
double mb_rbuf_f64(mb_rbuf *r);
/* Copies a string into buf (NUL-terminated); bad when longer than len-1 or MB_WIRE_MAX_STR. */
void mb_rbuf_str(mb_rbuf *r, char *buf, size_t len);
/* 1 when every byte was consumed and nothing was read past the end. */
int mb_rbuf_done(const mb_rbuf *r);

void mb_wire_hdr_encode(uint8_t out[MB_WIRE_HDR_LEN], int type, uint32_t len, uint32_t frame);
/* Checks magic, version, type in `allowed`, and len against the type's limit
 * (the TENSOR limit is max_tensor). 0, or -1 with err; MB_WIRE_EVERSION for
 * a frame of another protocol version. An ERROR frame (when allowed) is
 * accepted whatever its version: its layout is the same in every version,
 * so a peer's "wrong version" answer can be read. */
int mb_wire_hdr_decode(const uint8_t in[MB_WIRE_HDR_LEN], uint32_t allowed, uint64_t max_tensor,
                       mb_wire_hdr *h, char *err, size_t errlen);

/* Blocking I/O with an absolute deadline (mb_now() seconds; <= 0: none).
 * Returns 0; -1 with err on error, EOF ("connection closed") or deadline
 * ("timed out"). *eof (optional) is set when the peer closed before any byte. */
int mb_wire_read_full(int fd, void *buf, size_t n, double deadline, int *eof, char *err,
                      size_t errlen);
int mb_wire_write_full(int fd, const void *buf, size_t n, char *err, size_t errlen);
/* Header + payload in one writev. */
int mb_wire_send(int fd, int type, uint32_t frame, const void *payload, size_t len, char *err,
                 size_t errlen);
/* Read one header, then (for every type but TENSOR) its payload into a
 * malloc'd buffer (*payload, caller frees; NULL for an empty payload).
 * TENSOR payloads are left on the socket for mb_wire_tensor_recv. */
int mb_wire_recv(int fd, uint32_t allowed, uint64_t max_tensor, double deadline, mb_wire_hdr *h,
                 uint8_t **payload, char *err, size_t errlen);
/* Best effort: send ERROR (code, message). Used before closing on a violation. */
void mb_wire_send_error(int fd, uint32_t frame, int code, const char *msg);

/* Close after an ERROR: stop sending, discard what the peer still sends
 * (at most max_bytes, at most linger_s), then close. Closing with unread
 * input would reset the connection and could destroy the ERROR in flight. */
void mb_wire_close_lingering(int fd, size_t max_bytes, double linger_s);

/* ---- messages ---- */

typedef struct mb_hello {
    uint16_t proto;       /* MB_WIRE_VERSION of the sender */
    uint8_t role;         /* MB_WIRE_ROLE_* */
    int site;             /* peer: the sending site; node reply: its site or -1 */
    uint32_t epoch;       /* peer: plan epoch it sends for */
    uint64_t graph_hash;  /* 0 when the sender has not loaded a model (a node's first reply) */
    int64_t clock_ns;     /* sender's CLOCK_MONOTONIC (clock offset estimate) */
    uint64_t host_id;     /* hash of the sender's boot id: equal ids share one monotonic clock */
    uint32_t idle_ms;     /* node reply: the session is dropped after this long without a
                           * frame from the runner (the runner sends PING well before) */
    uint8_t nonce[MB_WIRE_NONCE]; /* the client's handshake nonce (auth.h) */
    /* A name for logs, or a zoo name: never a path. The model is identified
     * by graph_hash and looked up among the node's own models. */
    char model[MB_WIRE_MAX_STR + 1];
} mb_hello;

int mb_hello_encode(const mb_hello *h, mb_wbuf *b);
int mb_hello_decode(const uint8_t *p, size_t len, mb_hello *h, char *err, size_t errlen);

/* The plan as a node receives it: the steps, its own site, every site's
 * name, role and data address ("host:port" where that site listens). */
typedef struct mb_wire_plan {
    uint32_t epoch;
    int your_site;
    double timeout_s;      /* how long a node waits on a peer before reporting */
    mb_topology topo;      /* sites only (names, roles, addresses); no links */
    mb_plan *plan;
} mb_wire_plan;

int mb_wire_plan_encode(const mb_plan *p, const mb_topology *t, const char (*addrs)[64],
                        int your_site, uint32_t epoch, double timeout_s, mb_wbuf *b);
/* Decode and validate against g (op range, regions inside ops, sites in
 * range, mb_plan_validate). On success out->plan is new (free with
 * mb_wire_plan_free). */
int mb_wire_plan_decode(const uint8_t *p, size_t len, const mb_graph *g, mb_wire_plan *out,
                        char *err, size_t errlen);
void mb_wire_plan_free(mb_wire_plan *wp);
/* The graph hash and model name a PLAN names, read before decoding it
 * against a graph (a later PLAN of a session may name another of the
 * node's models: generation's prefill graph, then its decode graph). */
int mb_wire_plan_peek(const uint8_t *p, size_t len, uint64_t *hash, char *model, size_t modellen, char *err,
                      size_t errlen);

/* TENSOR: fixed part, then numel * 4 bytes of data (NCHW region, row-major). */
typedef struct mb_tensor_hdr {
    uint32_t epoch;
    uint32_t step;
    int op;
    mb_region region;
    uint8_t dtype;
    int ndim;
    int64_t dims[MB_MAX_DIMS];
} mb_tensor_hdr;

/* Fixed part's size for ndim dims. */
size_t mb_tensor_hdr_size(int ndim);
void mb_tensor_hdr_encode(const mb_tensor_hdr *h, mb_wbuf *b);
/* Reads the fixed part from the socket (payload_len from the frame header),
 * then checks it against the plan: step in range, a SEND from `from` to `me`
 * of that op and region, dtype f32, dims equal the region's shape, and
 * payload_len == fixed part + numel * 4. On success *data_bytes receives the
 * byte count still to read. */
int mb_tensor_hdr_recv(int fd, uint32_t payload_len, const mb_plan *p, const mb_graph *g,
                       uint32_t epoch, int from, int me, double deadline, mb_tensor_hdr *h,
                       size_t *data_bytes, char *err, size_t errlen);
/* Decode a fixed part from memory (tests and fuzzing); same checks. */
int mb_tensor_hdr_check(const uint8_t *p, size_t avail, uint32_t payload_len, const mb_plan *plan,
                        const mb_graph *g, uint32_t epoch, int from, int me, mb_tensor_hdr *h,
                        size_t *data_bytes, char *err, size_t errlen);
/* The largest TENSOR payload any SEND in p can produce (the reader's limit). */
uint64_t mb_wire_plan_max_tensor(const mb_plan *p, const mb_graph *g);

/* The dims a region of op's output has on the wire. */
int mb_region_dims(const mb_graph *g, int op, mb_region r, int64_t *dims);

/* Hash of /proc/sys/kernel/random/boot_id and this process's time namespace
 * (0 when the boot id is unreadable): equal ids share one CLOCK_MONOTONIC. */
uint64_t mb_wire_host_id(void);
/* CLOCK_MONOTONIC in nanoseconds. */
int64_t mb_wire_clock_ns(void);

/* ERROR payload. */
int mb_error_encode(int code, const char *msg, mb_wbuf *b);
int mb_error_decode(const uint8_t *p, size_t len, int *code, char *msg, size_t msglen);

#endif
