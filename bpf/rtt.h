/* TCP round-trip time measured in the TC program (included by flows.c when ENABLE_RTT).
 *
 * Works without fentry/kprobes. A sample is the time from a packet to the packet that acknowledges
 * it in the other direction: TCP timestamp echoes (TSval -> TSecr, one outstanding sample per flow;
 * the handshake is covered too, as SYN and SYN-ACK carry timestamps), or for peers without
 * timestamps the handshake (SYN -> SYN-ACK, SYN-ACK -> ACK). Each sample is kept, per flow and
 * report interval, as its minimum (delayed ACKs only ever add time). Seen from one node, the samples of one direction are the path RTT and those of the
 * other direction only the local stack's delay; user space reports max(flow, reverse flow) on both
 * (agent/run.py), which is the path RTT wherever the agent sits.
 */
/* The one outstanding timestamp sample of a flow: its TSval and when the packet carrying it was seen.
 * One pending sample per flow (not one per packet) keeps the cost at two hash lookups a packet. */
struct rtt_pending {
    u32 tsval;             /* the outstanding TSval (valid when `valid`) */
    u32 last_echoed;       /* newest TSval echoed or given up on: only later ones start samples */
    u64 seen_ns;
    u8 valid;
    u8 pad[7];
};

#define RTT_PENDING_MAX_NS 2000000000ULL  /* a TSval not echoed in 2 s (lost packet): start over */

BPF_TABLE("lru_hash", struct flow_key, u64, syn_seen, 16384);
BPF_TABLE("lru_hash", struct flow_key, struct rtt_pending, rtt_pending, CACHE_MAX_FLOWS);
BPF_TABLE("hash", struct flow_key, u64, rtt_flows, CACHE_MAX_FLOWS);

static __always_inline void rtt_sample(const struct flow_key *k, u64 rtt) {
    u64 *cur = rtt_flows.lookup((struct flow_key *)k);
    if (cur) {
        if (rtt < *cur)
            *cur = rtt;
    } else {
        rtt_flows.update((struct flow_key *)k, &rtt);
    }
}

/* Reads the TCP timestamps option; 1 when found. Options are at most 40 bytes. */
static __always_inline int read_ts(struct __sk_buff *skb, u32 off, u32 opt_len, u32 *tsval, u32 *tsecr) {
    u8 opts[40] = {};
    if (opt_len > 40)
        opt_len = 40;
    if (opt_len < 10 || bpf_skb_load_bytes(skb, off, opts, opt_len & 63) < 0)
        return 0;
    u32 i = 0;
    for (int n = 0; n < 10; n++) {
        if (i + 10 > opt_len || i > 30)
            return 0;
        u8 kind = opts[i & 63];
        if (kind == 0)
            return 0;
        if (kind == 1) {  /* NOP */
            i += 1;
            continue;
        }
        u8 len = opts[(i + 1) & 63];
        if (kind == 8 && len == 10) {
            u32 b = i + 2;
            if (b > 32)
                return 0;
            *tsval = ((u32)opts[b] << 24) | ((u32)opts[b + 1] << 16) | ((u32)opts[b + 2] << 8) | opts[b + 3];
            *tsecr = ((u32)opts[b + 4] << 24) | ((u32)opts[b + 5] << 16) | ((u32)opts[b + 6] << 8)
                     | opts[b + 7];
            return 1;
        }
        if (len < 2)
            return 0;
        i += len;
    }
    return 0;
}

static __always_inline void track_rtt(struct __sk_buff *skb, struct packet *p, u64 now) {
    if (p->key.proto != IPPROTO_TCP)
        return;
    u32 f = p->tcp_flags;
    u32 tsval = 0, tsecr = 0;
    int has_ts = p->tcp_hdr_len > 20 && read_ts(skb, p->l4_off + 20, p->tcp_hdr_len - 20, &tsval, &tsecr);
    struct flow_key rev = {};
    reverse_key(&p->key, &rev);
    if (!has_ts) {
        /* No timestamps (e.g. peers with RFC 7323 off): the handshake alone gives samples. */
        if (f & TCP_ACK) {
            u64 *t = syn_seen.lookup(&rev);
            if (t) {
                rtt_sample(&rev, now - *t);
                syn_seen.delete(&rev);
            }
        }
        if (f & TCP_SYN)
            syn_seen.update(&p->key, &now);
        return;
    }
    if (tsecr) {  /* does this packet echo the reverse flow's outstanding TSval? */
        struct rtt_pending *pend = rtt_pending.lookup(&rev);
        if (pend && pend->valid) {
            if (pend->tsval == tsecr) {
                rtt_sample(&rev, now - pend->seen_ns);
                pend->valid = 0;
                pend->last_echoed = tsecr;
            } else if ((s32)(tsecr - pend->tsval) > 0) {
                /* a later TSval is echoed (ours was lost or coalesced): no sample from it */
                pend->valid = 0;
                pend->last_echoed = tsecr;
            }
        }
    }
    /* Only packets that elicit an acknowledgement start a sample: a pure ACK is echoed whenever the
     * peer next has data to send, which measures the application, not the network. */
    if (skb->len <= p->hdr_len && !(f & (TCP_SYN | TCP_FIN)))
        return;
    struct rtt_pending *mine = rtt_pending.lookup(&p->key);
    if (mine) {
        if (mine->valid && now - mine->seen_ns < RTT_PENDING_MAX_NS)
            return;  /* one outstanding sample per flow */
        /* TSval ticks every 1 ms or so: a packet of the tick already echoed would match a stale echo
         * and give a near-zero sample, so only a TSval after the last echoed one starts a sample. */
        if (mine->valid || (s32)(tsval - mine->last_echoed) > 0) {
            mine->tsval = tsval;
            mine->seen_ns = now;
            mine->valid = 1;
        }
        return;
    }
    struct rtt_pending fresh = {.tsval = tsval, .seen_ns = now, .valid = 1};
    rtt_pending.update(&p->key, &fresh);
}
