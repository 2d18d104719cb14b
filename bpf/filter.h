/* Flow filter rules (NetObserv flowFilter semantics), included by flows.c when ENABLE_FILTER.
 *
 * NetObserv's order: the rule found by longest-prefix match on the source address is evaluated
 * first; when there is none or its conditions do not all match, the rule matching the destination
 * address is. A packet matching no rule's conditions is rejected (an accept-all 0.0.0.0/0 rule
 * inverts that default).
 */
BPF_LPM_TRIE(filter_rules, struct filter_key, struct filter_rule, 32);

static __always_inline int prefix_matches(const u8 *ip, const u8 *rule_ip, u32 bits) {
    for (int i = 0; i < 16; i++) {
        if (bits == 0)
            break;
        u8 mask = bits >= 8 ? 0xff : (u8)(0xff << (8 - bits));
        if ((ip[i] ^ rule_ip[i]) & mask)
            return 0;
        bits = bits >= 8 ? bits - 8 : 0;
    }
    return 1;
}

/* A port condition: any (all zero), a range lo-hi, and/or a second port of a "a,b" pair. */
static __always_inline int port_matches(u16 v, u16 lo, u16 hi, u16 alt) {
    return (lo == 0 && hi == 0 && alt == 0) || (v >= lo && v <= hi && hi != 0) || (alt != 0 && v == alt);
}

static __always_inline int rule_matches(const struct filter_rule *r, const struct packet *p, u8 dir,
                                        const u8 *peer) {
    if (r->proto && r->proto != p->key.proto)
        return 0;
    if (r->direction && r->direction != dir + 1)
        return 0;
    if (!port_matches(p->key.src_port, r->src_port_lo, r->src_port_hi, r->src_port_alt))
        return 0;
    if (!port_matches(p->key.dst_port, r->dst_port_lo, r->dst_port_hi, r->dst_port_alt))
        return 0;
    if ((r->any_port_lo || r->any_port_hi || r->any_port_alt)
            && !port_matches(p->key.src_port, r->any_port_lo, r->any_port_hi, r->any_port_alt)
            && !port_matches(p->key.dst_port, r->any_port_lo, r->any_port_hi, r->any_port_alt))
        return 0;
    if (r->icmp_type != 255 && r->icmp_type != p->key.icmp_type)
        return 0;
    if (r->icmp_code != 255 && r->icmp_code != p->key.icmp_code)
        return 0;
    if (r->tcp_flags && p->tcp_flags != r->tcp_flags)
        return 0;  /* exact, as NetObserv: SYN does not match a SYN-ACK */
    if (r->peer_prefix_len && !prefix_matches(peer, r->peer_ip, r->peer_prefix_len))
        return 0;
    return 1;
}

/* 1 when the packet must not be counted; may lower/raise `sampling` to the rule's rate. */
static __always_inline int filter_rejects(struct packet *p, u8 dir, u32 *sampling) {
    struct filter_key k = {.prefix_len = 128};
    __builtin_memcpy(k.ip, p->key.src_ip, 16);
    struct filter_rule *r = filter_rules.lookup(&k);
    if (!r || !rule_matches(r, p, dir, p->key.dst_ip)) {
        __builtin_memcpy(k.ip, p->key.dst_ip, 16);
        r = filter_rules.lookup(&k);
        if (r && !rule_matches(r, p, dir, p->key.src_ip))
            r = 0;
    }
    if (!r || r->action != 0) {
        count(CNT_FILTER_REJECT);
        return 1;
    }
    if (r->sampling)
        *sampling = r->sampling;
    count(CNT_FILTER_ACCEPT);
    return 0;
}
