/* flowlake flow capture: TC clsact ingress/egress classifiers that count flows in the kernel.
 *
 * Requirements: Linux >= 5.8 (ring buffer, atomics), BTF for the drop feature, CAP_BPF +
 * CAP_NET_ADMIN (+ CAP_PERFMON for tracepoints). Never changes or drops a packet (TC_ACT_OK).
 * Compiled by bcc at agent start (agent/program.py prepends the #defines that configure it);
 * `flowlake agent --print-bpf` prints the exact text compiled.
 * Measured cost: see docs/performance.md (kernel bpf stats under iperf3 load).
 *
 * Counting rules (NetObserv semantics): one flow per 5-tuple (+ICMP type/code); counters move only
 * on the interface where the flow was first seen (in-kernel dedup of a flow crossing veth + uplink);
 * other interfaces only extend the time range, the TCP flags and the observed-interface list.
 * Bytes are L2 (Ethernet header included); a GSO/TSO super-packet counts as its wire segments.
 */
#include <uapi/linux/bpf.h>
#include <uapi/linux/if_ether.h>
#include <uapi/linux/in.h>
#include <uapi/linux/ip.h>
#include <uapi/linux/ipv6.h>
#include <uapi/linux/pkt_cls.h>
#include "flows.h"

#ifndef SAMPLING
#define SAMPLING 1
#endif
#ifndef CACHE_MAX_FLOWS
#define CACHE_MAX_FLOWS 5000
#endif
#ifndef RINGBUF_PAGES
#define RINGBUF_PAGES 64
#endif
#ifndef DNS_PORT
#define DNS_PORT 53
#endif

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10
#define FLAG_SYN_ACK 0x100
#define FLAG_FIN_ACK 0x200
#define FLAG_RST_ACK 0x400
#define IPPROTO_ICMPV6_ 58
#define IPPROTO_SCTP_ 132

BPF_TABLE("hash", struct flow_key, struct flow_stats, flows, CACHE_MAX_FLOWS);
BPF_RINGBUF_OUTPUT(flow_events, RINGBUF_PAGES);
BPF_PERCPU_ARRAY(global_counters, u64, CNT_MAX);

struct packet {
    struct flow_key key;
    u8 src_mac[6];
    u8 dst_mac[6];
    u16 eth_proto;
    u8 dscp;
    u8 tcp_hdr_len;     /* 0 when not TCP */
    u32 tcp_flags;      /* schema bitfield */
    u32 l4_off;         /* offset of the transport header */
    u32 hdr_len;        /* L2+L3+L4 header bytes, to size GSO segments */
};

static __always_inline void count(u32 index) {
    u64 *v = global_counters.lookup(&index);
    if (v)
        *v += 1;  /* per-CPU: no atomic needed */
}

static __always_inline u32 tcp_flag_bits(u8 raw) {
    u32 f = raw;  /* FIN..CWR share the wire bit layout */
    if ((raw & TCP_SYN) && (raw & TCP_ACK)) f |= FLAG_SYN_ACK;
    if ((raw & TCP_FIN) && (raw & TCP_ACK)) f |= FLAG_FIN_ACK;
    if ((raw & TCP_RST) && (raw & TCP_ACK)) f |= FLAG_RST_ACK;
    return f;
}

static __always_inline int parse_l4(struct __sk_buff *skb, struct packet *p, u32 off) {
    u8 proto = p->key.proto;
    p->l4_off = off;
    if (proto == IPPROTO_TCP) {
        u8 hdr[14];
        if (bpf_skb_load_bytes(skb, off, hdr, sizeof(hdr)) < 0)
            return 0;
        p->key.src_port = ((u16)hdr[0] << 8) | hdr[1];
        p->key.dst_port = ((u16)hdr[2] << 8) | hdr[3];
        p->tcp_hdr_len = (hdr[12] >> 4) * 4;
        p->tcp_flags = tcp_flag_bits(hdr[13]);
        p->hdr_len = off + p->tcp_hdr_len;
    } else if (proto == IPPROTO_UDP || proto == IPPROTO_SCTP_) {
        u8 hdr[4];
        if (bpf_skb_load_bytes(skb, off, hdr, sizeof(hdr)) < 0)
            return 0;
        p->key.src_port = ((u16)hdr[0] << 8) | hdr[1];
        p->key.dst_port = ((u16)hdr[2] << 8) | hdr[3];
        p->hdr_len = off + (proto == IPPROTO_UDP ? 8 : 12);
    } else if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6_) {
        u8 hdr[2];
        if (bpf_skb_load_bytes(skb, off, hdr, sizeof(hdr)) < 0)
            return 0;
        p->key.icmp_type = hdr[0];
        p->key.icmp_code = hdr[1];
        p->hdr_len = off + 8;
    } else {
        p->hdr_len = off;
    }
    return 0;
}

/* Returns 0 and fills `p` for IPv4/IPv6 packets, -1 for anything else (ARP, LLDP...).
 * Handles up to two VLAN tags left in the frame, and L3 devices (tun, wireguard) whose packets
 * start at the IP header. */
static __always_inline int parse(struct __sk_buff *skb, struct packet *p) {
    struct ethhdr eth;
    u32 l3 = ETH_HLEN;
    if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)) < 0)
        return -1;
    u16 proto = bpf_ntohs(eth.h_proto);
    if (skb->protocol != eth.h_proto && proto != ETH_P_8021Q && proto != ETH_P_8021AD) {
        l3 = 0;  /* no Ethernet header: an L3 device */
        proto = bpf_ntohs(skb->protocol);
    } else {
        __builtin_memcpy(p->dst_mac, eth.h_dest, 6);
        __builtin_memcpy(p->src_mac, eth.h_source, 6);
        for (int i = 0; i < 2; i++) {  /* 802.1Q / 802.1ad tags still in the frame */
            if (proto != ETH_P_8021Q && proto != ETH_P_8021AD)
                break;
            u8 tag[4];
            if (bpf_skb_load_bytes(skb, l3, tag, sizeof(tag)) < 0)
                return -1;
            proto = ((u16)tag[2] << 8) | tag[3];
            l3 += 4;
        }
    }
    p->eth_proto = proto;
    if (proto == ETH_P_IP) {
        struct iphdr ip;
        if (bpf_skb_load_bytes(skb, l3, &ip, sizeof(ip)) < 0 || ip.version != 4)
            return -1;
        p->key.src_ip[10] = 0xff; p->key.src_ip[11] = 0xff;
        p->key.dst_ip[10] = 0xff; p->key.dst_ip[11] = 0xff;
        __builtin_memcpy(&p->key.src_ip[12], &ip.saddr, 4);
        __builtin_memcpy(&p->key.dst_ip[12], &ip.daddr, 4);
        p->dscp = ip.tos >> 2;
        p->key.proto = ip.protocol;
        if (ip.frag_off & bpf_htons(0x1fff)) {  /* a non-first fragment has no L4 header */
            p->hdr_len = l3 + ip.ihl * 4;
            return 0;
        }
        return parse_l4(skb, p, l3 + ip.ihl * 4);
    }
    if (proto == ETH_P_IPV6) {
        struct ipv6hdr ip6;
        if (bpf_skb_load_bytes(skb, l3, &ip6, sizeof(ip6)) < 0 || ip6.version != 6)
            return -1;
        __builtin_memcpy(p->key.src_ip, &ip6.saddr, 16);
        __builtin_memcpy(p->key.dst_ip, &ip6.daddr, 16);
        p->dscp = ((ip6.priority << 4) | (ip6.flow_lbl[0] >> 4)) >> 2;
        u8 next = ip6.nexthdr;
        u32 off = l3 + sizeof(ip6);
        /* Walk up to 4 extension headers: hop-by-hop (0), routing (43), destination options (60),
         * authentication (51, length in 4-byte units) and fragment (44, 8 bytes; a non-first
         * fragment has no L4 header). */
        for (int i = 0; i < 4; i++) {
            if (next != 0 && next != 43 && next != 60 && next != 51 && next != 44)
                break;
            u8 ext[4];
            if (bpf_skb_load_bytes(skb, off, ext, sizeof(ext)) < 0)
                return -1;
            if (next == 44) {
                u16 frag = (((u16)ext[2] << 8) | ext[3]) & 0xfff8;
                next = ext[0];
                off += 8;
                if (frag) {
                    p->key.proto = next;
                    p->hdr_len = off;
                    return 0;
                }
                continue;
            }
            off += next == 51 ? ((u32)ext[1] + 2) * 4 : ((u32)ext[1] + 1) * 8;
            next = ext[0];
        }
        p->key.proto = next;
        return parse_l4(skb, p, off);
    }
    return -1;
}

/* The key of the opposite direction (DNS responses, RTT echoes). */
static __always_inline void reverse_key(const struct flow_key *k, struct flow_key *r) {
    __builtin_memcpy(r->src_ip, k->dst_ip, 16);
    __builtin_memcpy(r->dst_ip, k->src_ip, 16);
    r->src_port = k->dst_port;
    r->dst_port = k->src_port;
    r->proto = k->proto;
    r->icmp_type = k->icmp_type;
    r->icmp_code = k->icmp_code;
}

#ifdef ENABLE_FILTER
#include "filter.h"
#endif
#ifdef ENABLE_DNS
#include "dns.h"
#endif
#ifdef ENABLE_RTT
#include "rtt.h"
#endif

static __always_inline void observe_iface(struct flow_stats *s, u32 ifindex, u8 dir) {
    u8 n = s->n_ifaces;
    for (int i = 0; i < MAX_OBSERVED_IFACES; i++) {
        if (i >= n)
            break;
        if (s->ifaces[i] == ifindex && s->dirs[i] == dir)
            return;
    }
    if (n < MAX_OBSERVED_IFACES) {
        s->ifaces[n] = ifindex;
        s->dirs[n] = dir;
        s->n_ifaces = n + 1;
    } else {
        if (s->ifaces_missed < 255)
            s->ifaces_missed += 1;
        count(CNT_IFACES_MISSED);
    }
}

/* The map is full: never lose the packet silently, hand it to user space. */
static __always_inline void fallback(const struct flow_key *key, const struct flow_stats *stats) {
    struct flow_event *ev = flow_events.ringbuf_reserve(sizeof(struct flow_event));
    if (!ev) {
        count(CNT_RINGBUF_LOST);
        return;
    }
    __builtin_memcpy(&ev->key, key, sizeof(*key));
    __builtin_memcpy(&ev->stats, stats, sizeof(*stats));
    flow_events.ringbuf_submit(ev, 0);
    count(CNT_RINGBUF_FALLBACK);
}

static __always_inline int track(struct __sk_buff *skb, u8 dir) {
    struct packet p = {};
    if (parse(skb, &p) < 0)
        return TC_ACT_OK;
    u32 sampling = SAMPLING;
#ifdef ENABLE_FILTER
    if (filter_rejects(&p, dir, &sampling))
        return TC_ACT_OK;
#endif
    if (sampling > 1 && bpf_get_prandom_u32() % sampling != 0)
        return TC_ACT_OK;
    u64 now = bpf_ktime_get_ns();
    /* DNS (UDP) and RTT (TCP) on disjoint branches: the verifier then explores their paths one
     * after the other instead of every combination of both. */
    if (p.key.proto == IPPROTO_UDP) {
#ifdef ENABLE_DNS
        track_dns(skb, &p, now);
#endif
    } else if (p.key.proto == IPPROTO_TCP) {
#ifdef ENABLE_RTT
        track_rtt(skb, &p, now);
#endif
    }
    /* A GSO/TSO super-packet leaves as gso_segs wire packets, each with its own headers. */
    u32 segs = skb->gso_segs > 1 ? skb->gso_segs : 1;
    u64 bytes = skb->len + (u64)(segs - 1) * p.hdr_len;

    struct flow_stats *s = flows.lookup(&p.key);
    if (!s) {
        struct flow_stats n = {};
        n.first_ns = now;
        n.last_ns = now;
        n.bytes = bytes;
        n.packets = segs;
        n.flags = p.tcp_flags;
        n.if_first = skb->ifindex;
        n.sampling = sampling;
        n.eth_proto = p.eth_proto;
        __builtin_memcpy(n.src_mac, p.src_mac, 6);
        __builtin_memcpy(n.dst_mac, p.dst_mac, 6);
        n.dir_first = dir;
        n.dscp = p.dscp;
        n.n_ifaces = 1;
        n.ifaces[0] = skb->ifindex;
        n.dirs[0] = dir;
        if (flows.insert(&p.key, &n) == 0)
            return TC_ACT_OK;
        s = flows.lookup(&p.key);  /* another CPU created it first: update that entry below */
        if (!s) {
            fallback(&p.key, &n);
            return TC_ACT_OK;
        }
    }
    if (s->if_first == skb->ifindex) {
        __sync_fetch_and_add(&s->packets, segs);
        __sync_fetch_and_add(&s->bytes, bytes);
    } else {
        observe_iface(s, skb->ifindex, dir);
    }
    s->last_ns = now;
    /* A plain OR: atomic OR needs BPF cpu v3; two CPUs racing on one flow's flags at once is
     * rare and loses at most a bit that the next packet of the flow sets again. */
    if (p.tcp_flags)
        s->flags |= p.tcp_flags;
    return TC_ACT_OK;
}

int flowlake_tc_ingress(struct __sk_buff *skb) {
    return track(skb, 0);
}

int flowlake_tc_egress(struct __sk_buff *skb) {
    return track(skb, 1);
}
