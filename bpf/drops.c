/* Packet drops: the skb:kfree_skb tracepoint, attributed to flows (appended when ENABLE_DROPS).
 *
 * The dropped packet's headers are read from the skb with bpf_probe_read_kernel at offsets taken
 * from the running kernel's BTF (SKB_*_OFF, SOCK_STATE_OFF are #defined by agent/program.py), so a
 * header-version mismatch cannot misattribute drops. Reason names come from the tracepoint's format
 * file (agent/drops.py). PktDropBytes counts like Bytes: the IP packet length plus a 14-byte
 * Ethernet header, whatever part of the packet the stack had already pulled at the drop point.
 * IPv6 extension headers are not walked here (a drop behind one is keyed by the extension's
 * protocol), and flow filter rules do not apply to drops.
 */
BPF_TABLE("hash", struct flow_key, struct drop_record, drop_flows, CACHE_MAX_FLOWS);

/* The tracepoint record is read at the offsets of the running kernel's format file (TP_*_OFF):
 * its layout changed across versions (6.x added rx_sk before protocol). */
int flowlake_kfree_skb(void *ctx) {
    u32 reason = *(u32 *)((u8 *)ctx + TP_REASON_OFF);
    /* Values below the smallest drop reason named in this kernel's format file are not drops
     * (SKB_NOT_DROPPED_YET, SKB_CONSUMED where they exist); agent/drops.py computes it. */
    if (reason < DROP_REASON_MIN)
        return 0;
    u16 proto = *(u16 *)((u8 *)ctx + TP_PROTOCOL_OFF);  /* already host byte order here */
    if (proto != ETH_P_IP && proto != ETH_P_IPV6)
        return 0;
    u8 *skb = *(u8 **)((u8 *)ctx + TP_SKBADDR_OFF);
    u8 *head = 0;
    u16 nh = 0;
    u32 len = 0;
    bpf_probe_read_kernel(&head, sizeof(head), skb + SKB_HEAD_OFF);
    bpf_probe_read_kernel(&nh, sizeof(nh), skb + SKB_NETWORK_HEADER_OFF);
    if (!head || nh == 0 || nh == 0xffff) {  /* network header never set */
        count(CNT_DROP_UNPARSED);
        return 0;
    }
    struct flow_key key = {};
    u32 l4 = 0;
    if (proto == ETH_P_IP) {
        struct iphdr ip = {};
        if (bpf_probe_read_kernel(&ip, sizeof(ip), head + nh) < 0 || ip.version != 4) {
            count(CNT_DROP_UNPARSED);
            return 0;
        }
        key.src_ip[10] = 0xff; key.src_ip[11] = 0xff;
        key.dst_ip[10] = 0xff; key.dst_ip[11] = 0xff;
        __builtin_memcpy(&key.src_ip[12], &ip.saddr, 4);
        __builtin_memcpy(&key.dst_ip[12], &ip.daddr, 4);
        key.proto = ip.protocol;
        l4 = nh + ip.ihl * 4;
        len = bpf_ntohs(ip.tot_len) + ETH_HLEN;
        if (ip.frag_off & bpf_htons(0x1fff))
            l4 = 0;  /* a non-first fragment: no ports, as flows.c keys it */
    } else {
        struct ipv6hdr ip6 = {};
        if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh) < 0 || ip6.version != 6) {
            count(CNT_DROP_UNPARSED);
            return 0;
        }
        __builtin_memcpy(key.src_ip, &ip6.saddr, 16);
        __builtin_memcpy(key.dst_ip, &ip6.daddr, 16);
        key.proto = ip6.nexthdr;  /* extension headers are not walked here */
        l4 = nh + sizeof(ip6);
        len = bpf_ntohs(ip6.payload_len) + sizeof(ip6) + ETH_HLEN;
    }
    u8 l4hdr[14] = {};
    u32 tcp_flags = 0;
    if (l4 && (key.proto == IPPROTO_TCP || key.proto == IPPROTO_UDP || key.proto == IPPROTO_SCTP_)) {
        bpf_probe_read_kernel(l4hdr, sizeof(l4hdr), head + l4);
        key.src_port = ((u16)l4hdr[0] << 8) | l4hdr[1];
        key.dst_port = ((u16)l4hdr[2] << 8) | l4hdr[3];
        if (key.proto == IPPROTO_TCP)
            tcp_flags = tcp_flag_bits(l4hdr[13]);
    } else if (l4 && (key.proto == IPPROTO_ICMP || key.proto == IPPROTO_ICMPV6_)) {
        bpf_probe_read_kernel(l4hdr, 2, head + l4);
        key.icmp_type = l4hdr[0];
        key.icmp_code = l4hdr[1];
    }
    u8 state = 0;
    u8 *sk = 0;
    bpf_probe_read_kernel(&sk, sizeof(sk), skb + SKB_SK_OFF);
    if (sk)
        bpf_probe_read_kernel(&state, sizeof(state), sk + SOCK_STATE_OFF);
    struct drop_record *d = drop_flows.lookup(&key);
    if (d) {
        __sync_fetch_and_add(&d->bytes, len);
        __sync_fetch_and_add(&d->packets, 1);
        d->latest_reason = reason;
        d->latest_state = state;
        d->latest_flags = tcp_flags;
        return 0;
    }
    struct drop_record n = {};
    n.bytes = len;
    n.packets = 1;
    n.latest_reason = reason;
    n.latest_state = state;
    n.latest_flags = tcp_flags;
    drop_flows.update(&key, &n);
    return 0;
}
