/* flowlake kernel <-> user-space contract: map keys and values drained by the agent.
 *
 * agent/records.py mirrors every struct here as a numpy dtype, and tests/agent check the sizes and
 * offsets against what bcc reports, so the two can never drift apart silently. All structs are
 * naturally aligned with explicit padding (no `packed`: it costs unaligned access in the kernel).
 */
#ifndef FLOWLAKE_FLOWS_H
#define FLOWLAKE_FLOWS_H

#define MAX_OBSERVED_IFACES 6
#define DNS_NAME_LEN 32

/* The flow key: a 5-tuple (IPv4 stored as v4-mapped IPv6) plus ICMP type/code. Interface and
 * direction are deliberately not part of it: a flow crossing several interfaces of a node is one
 * flow, counted on the interface it was first seen on. */
struct flow_key {
    u8 src_ip[16];
    u8 dst_ip[16];
    u16 src_port;
    u16 dst_port;
    u8 proto;
    u8 icmp_type;
    u8 icmp_code;
    u8 pad;
};  /* 40 bytes */

struct flow_stats {
    u64 first_ns;          /* bpf_ktime_get_ns of the first packet */
    u64 last_ns;           /* ... of the last packet, on any interface */
    u64 bytes;             /* L2 bytes (skb->len at TC: Ethernet header included) */
    u32 packets;
    u32 flags;             /* union of TCP flags; bit layout of the schema's Flags field */
    u32 if_first;          /* ifindex where the flow was first seen: the only one that counts */
    u32 sampling;          /* 1:N rate applied to this flow's packets */
    u16 eth_proto;
    u8 src_mac[6];
    u8 dst_mac[6];
    u8 dir_first;          /* 0 ingress, 1 egress */
    u8 dscp;
    u8 n_ifaces;           /* entries used in ifaces/dirs */
    u8 ifaces_missed;      /* interfaces seen beyond MAX_OBSERVED_IFACES (saturates at 255) */
    u8 pad[2];
    u32 ifaces[MAX_OBSERVED_IFACES];
    u8 dirs[MAX_OBSERVED_IFACES];
    u8 pad2[6];
};  /* 96 bytes */

/* A packet that could not be counted in the full flow map goes to the ring buffer instead. */
struct flow_event {
    struct flow_key key;
    struct flow_stats stats;
};

struct dns_record {
    u64 latency_ns;        /* request -> response, 0 on the request flow */
    u16 id;
    u16 flags;             /* DNS header flags; RCODE in the low 4 bits */
    u8 name[DNS_NAME_LEN]; /* query name in wire format (length-prefixed labels), first 32 bytes */
    u8 pad[4];
};  /* 48 bytes */

struct drop_record {
    u64 bytes;
    u32 packets;
    u16 latest_reason;     /* enum skb_drop_reason of the running kernel */
    u8 latest_state;       /* TCP state of the socket at the latest drop, 0 when unknown */
    u8 pad;
    u32 latest_flags;      /* TCP flags of the latest dropped packet */
    u32 pad2;
};  /* 24 bytes */

/* Flow filter rule, found by longest-prefix match on the source or destination address. */
struct filter_key {
    u32 prefix_len;        /* LPM trie key header: bits of ip that matter */
    u8 ip[16];
};

struct filter_rule {
    u8 action;             /* 0 accept, 1 reject */
    u8 proto;              /* 0 any */
    u8 direction;          /* 0 any, 1 ingress, 2 egress */
    u8 icmp_type;          /* 255 any */
    u8 icmp_code;          /* 255 any */
    u8 peer_prefix_len;    /* 0: no peer condition (bits of the v4-mapped address) */
    u8 prefix_len;         /* the rule's own CIDR length, to pick the longest of the src/dst matches */
    u8 pad;
    u16 tcp_flags;         /* 0 any, else the packet's flags must be exactly these */
    u16 src_port_alt;      /* second port of a "80,443" pair (0: none) */
    u16 src_port_lo, src_port_hi;  /* 0,0 any */
    u16 dst_port_lo, dst_port_hi;
    u16 any_port_lo, any_port_hi;  /* either port in range */
    u32 sampling;          /* 0: the global rate */
    u8 peer_ip[16];
    u16 dst_port_alt;
    u16 any_port_alt;
};  /* 48 bytes */

/* Indexes of the per-CPU global_counters array, named in agent/metrics.py. */
enum counter_index {
    CNT_RINGBUF_FALLBACK = 0,   /* flow map full: packet sent to the ring buffer */
    CNT_RINGBUF_LOST,           /* ring buffer full too: packet not counted */
    CNT_FILTER_REJECT,          /* rejected by a filter rule (or no rule matched) */
    CNT_FILTER_ACCEPT,
    CNT_IFACES_MISSED,          /* interface list full */
    CNT_DNS_NO_REQUEST,         /* DNS response whose request was not seen */
    CNT_DROP_UNPARSED,          /* drop of a packet whose headers could not be read */
    CNT_MAX,
};

#endif
