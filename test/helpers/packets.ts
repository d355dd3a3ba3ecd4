/**
 * Packet builders for tests of network programs: Ethernet, IPv4 (with its header checksum),
 * IPv6, TCP, UDP and ARP headers as bytes, the kernel selftests' `pkt_v4` / `pkt_v6`
 * (tools/testing/selftests/bpf/network_helpers.c), and readers for what programs write back.
 * Multi-byte header fields are big-endian, as on the wire.
 */

export const ETH_HLEN = 14;
export const ETH_P_IP = 0x0800;
export const ETH_P_ARP = 0x0806;
export const ETH_P_IPV6 = 0x86dd;
export const IPPROTO_ICMP = 1;
export const IPPROTO_IPIP = 4;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_IPV6 = 41;
export const IPPROTO_ICMPV6 = 58;

/** XDP verdicts (enum xdp_action). */
export const XDP_ABORTED = 0;
export const XDP_DROP = 1;
export const XDP_PASS = 2;
export const XDP_TX = 3;

/** tc verdicts (TC_ACT_*), as the low 32 bits of r0. */
export const TC_ACT_UNSPEC = 0xffffffff;
export const TC_ACT_OK = 0;
export const TC_ACT_SHOT = 2;

/** Concatenates byte arrays. */
export function concat(...parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A MAC address from `aa:bb:cc:dd:ee:ff`. */
export function mac(text: string): Uint8Array {
  const parts = text.split(':').map((h) => parseInt(h, 16));
  if (parts.length !== 6 || parts.some((b) => !(b >= 0 && b <= 255)))
    throw new Error(`bad MAC address '${text}'`);
  return new Uint8Array(parts);
}

/** An IPv4 address from dotted-quad text, as 4 bytes in network order. */
export function ip4(text: string): Uint8Array {
  const parts = text.split('.').map(Number);
  if (parts.length !== 4 || parts.some((b) => !Number.isInteger(b) || b < 0 || b > 255))
    throw new Error(`bad IPv4 address '${text}'`);
  return new Uint8Array(parts);
}

/** An Ethernet header. */
export function eth(dst: Uint8Array, src: Uint8Array, proto: number): Uint8Array {
  const h = new Uint8Array(ETH_HLEN);
  h.set(dst, 0);
  h.set(src, 6);
  new DataView(h.buffer).setUint16(12, proto);
  return h;
}

/** The Internet checksum (RFC 1071) of `bytes` (an even number of them). */
export function inetChecksum(bytes: Uint8Array): number {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let sum = 0;
  for (let k = 0; k + 1 < bytes.length; k += 2) sum += v.getUint16(k);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Fields of `ipv4()`. */
export interface Ipv4Fields {
  readonly src: string;
  readonly dst: string;
  readonly protocol: number;
  /** Bytes after the header (default 0). */
  readonly payloadLen?: number;
  readonly ttl?: number;
  /** Header length in 32-bit words (default 5); only the first 20 bytes are built. */
  readonly ihl?: number;
  readonly version?: number;
}

/** A 20-byte IPv4 header with a valid checksum. */
export function ipv4(f: Ipv4Fields): Uint8Array {
  const h = new Uint8Array(20);
  const v = new DataView(h.buffer);
  h[0] = ((f.version ?? 4) << 4) | (f.ihl ?? 5);
  v.setUint16(2, 20 + (f.payloadLen ?? 0));
  h[8] = f.ttl ?? 64;
  h[9] = f.protocol;
  h.set(ip4(f.src), 12);
  h.set(ip4(f.dst), 16);
  v.setUint16(10, inetChecksum(h));
  return h;
}

/** A 40-byte IPv6 header; addresses are 16 bytes (default all zero). */
export function ipv6(f: {
  readonly nexthdr: number;
  readonly payloadLen: number;
  readonly src?: Uint8Array;
  readonly dst?: Uint8Array;
  readonly hopLimit?: number;
}): Uint8Array {
  const h = new Uint8Array(40);
  const v = new DataView(h.buffer);
  h[0] = 0x60;
  v.setUint16(4, f.payloadLen);
  h[6] = f.nexthdr;
  h[7] = f.hopLimit ?? 64;
  if (f.src !== undefined) h.set(f.src, 8);
  if (f.dst !== undefined) h.set(f.dst, 24);
  return h;
}

/** A 20-byte TCP header (data offset 5). */
export function tcp(sport: number, dport: number): Uint8Array {
  const h = new Uint8Array(20);
  const v = new DataView(h.buffer);
  v.setUint16(0, sport);
  v.setUint16(2, dport);
  h[12] = 5 << 4;
  return h;
}

/** An 8-byte UDP header. */
export function udp(sport: number, dport: number, payloadLen = 0): Uint8Array {
  const h = new Uint8Array(8);
  const v = new DataView(h.buffer);
  v.setUint16(0, sport);
  v.setUint16(2, dport);
  v.setUint16(4, 8 + payloadLen);
  return h;
}

/** A 42-byte Ethernet + ARP request (who-has `target` tell `sender`). */
export function arpRequest(srcMac: Uint8Array, sender: string, target: string): Uint8Array {
  const a = new Uint8Array(28);
  const v = new DataView(a.buffer);
  v.setUint16(0, 1); // htype Ethernet
  v.setUint16(2, ETH_P_IP);
  a[4] = 6;
  a[5] = 4;
  v.setUint16(6, 1); // request
  a.set(srcMac, 8);
  a.set(ip4(sender), 14);
  a.set(ip4(target), 24);
  return concat(eth(mac('ff:ff:ff:ff:ff:ff'), srcMac, ETH_P_ARP), a);
}

/** `bytes` followed by `n` bytes counting up from `first`. */
export function withPayload(bytes: Uint8Array, n: number, first = 0): Uint8Array {
  return concat(
    bytes,
    Uint8Array.from({ length: n }, (_, k) => (first + k) & 0xff),
  );
}

/**
 * The selftests' `pkt_v4` (54 bytes): zero MACs, ETH_P_IP, an IPv4 header with only ihl = 5,
 * protocol TCP and tot_len 123 set (version and checksum stay 0), a TCP header with doff 5 and
 * urg_ptr = 123 stored as a host-order (little-endian) u16.
 */
export function pktV4(): Uint8Array {
  const p = new Uint8Array(54);
  const v = new DataView(p.buffer);
  v.setUint16(12, ETH_P_IP);
  p[14] = 5;
  v.setUint16(16, 123);
  p[23] = IPPROTO_TCP;
  p[34 + 12] = 5 << 4;
  v.setUint16(34 + 18, 123, true);
  return p;
}

/**
 * The selftests' `pkt_v6` (74 bytes): zero MACs, ETH_P_IPV6, an IPv6 header with only
 * nexthdr TCP and payload_len 123 set, and the TCP header of `pktV4`.
 */
export function pktV6(): Uint8Array {
  const p = new Uint8Array(74);
  const v = new DataView(p.buffer);
  v.setUint16(12, ETH_P_IPV6);
  v.setUint16(18, 123);
  p[20] = IPPROTO_TCP;
  p[54 + 12] = 5 << 4;
  v.setUint16(54 + 18, 123, true);
  return p;
}

/** Hex text of `bytes`, for readable failures. */
export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}
