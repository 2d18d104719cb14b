/* DNS tracking inside the TC program (included by flows.c when ENABLE_DNS).
 *
 * A query (QR=0) to or from DNS_PORT over UDP records its time keyed by (5-tuple, DNS id); the
 * response (QR=1) on the reverse 5-tuple gives the latency. Both flows get the id, header flags
 * (RCODE in the low 4 bits, so NXDOMAIN and SERVFAIL are visible) and the query name.
 * DNS over TCP is not parsed.
 */
struct dns_inflight_key {
    struct flow_key key;   /* the query's 5-tuple */
    u16 id;
    u16 pad[3];
};

BPF_TABLE("lru_hash", struct dns_inflight_key, u64, dns_inflight, 16384);
BPF_TABLE("hash", struct flow_key, struct dns_record, dns_flows, CACHE_MAX_FLOWS);

/* The query name as it is on the wire (length-prefixed labels), up to DNS_NAME_LEN bytes: turning
 * labels into dots happens in user space, once per distinct name (a loop here would multiply the
 * verifier's work by every other branch of the program). */
static __always_inline void read_qname(struct __sk_buff *skb, u32 off, u8 *name) {
    u32 len = skb->len > off ? skb->len - off : 0;
    if (len > DNS_NAME_LEN)
        len = DNS_NAME_LEN;
    if (len >= 1)
        bpf_skb_load_bytes(skb, off, name, len & (2 * DNS_NAME_LEN - 1));
}

static __always_inline void track_dns(struct __sk_buff *skb, struct packet *p, u64 now) {
    if (p->key.proto != IPPROTO_UDP || (p->key.src_port != DNS_PORT && p->key.dst_port != DNS_PORT))
        return;
    u32 off = p->l4_off + 8;
    u8 hdr[12];
    if (bpf_skb_load_bytes(skb, off, hdr, sizeof(hdr)) < 0)
        return;
    struct dns_record rec = {};
    rec.id = ((u16)hdr[0] << 8) | hdr[1];
    rec.flags = ((u16)hdr[2] << 8) | hdr[3];
    read_qname(skb, off + 12, rec.name);
    struct dns_inflight_key ik = {};
    ik.id = rec.id;
    if (!(rec.flags & 0x8000)) {
        __builtin_memcpy(&ik.key, &p->key, sizeof(ik.key));
        /* insert, not update: a query crossing several interfaces keeps its first sighting */
        dns_inflight.insert(&ik, &now);
        struct dns_record *seen = dns_flows.lookup(&p->key);
        if (seen && seen->id == rec.id)
            return;  /* the same query on another interface: already recorded */
    } else {
        reverse_key(&p->key, &ik.key);
        u64 *sent = dns_inflight.lookup(&ik);
        if (sent) {
            rec.latency_ns = now - *sent;
            dns_inflight.delete(&ik);
        } else {
            struct dns_record *seen = dns_flows.lookup(&p->key);
            if (seen && seen->id == rec.id)
                return;  /* the same response on a later interface: keep the latency measured first */
            count(CNT_DNS_NO_REQUEST);
        }
    }
    dns_flows.update(&p->key, &rec);
}
