// Chooses a listener's filter chain for a connection with Envoy's hierarchical matching:
// destination port, destination IP, server name, transport protocol, application protocols,
// source IP, source port. At each level the most specific non-empty match wins and the
// candidates narrow to it; a later level never falls back to chains an earlier level
// dropped. No chain left: the defaultFilterChain, else none (the connection is closed).
import type { FilterChain, ListenerConfig } from '../xds/resources/listener.js';
import type { PrefixRange } from '../xds/resources/filter-chain-match.js';
import type { SocketAddress } from '../interception/original-dst.js';

/** What the listener (and its listener filters) learnt about a connection. */
export interface ConnectionMatchInfo {
  destination: SocketAddress;
  source?: SocketAddress;
  /** SNI from the ClientHello (tls_inspector). */
  serverName?: string;
  /** 'tls' (tls_inspector saw a ClientHello) or 'raw_buffer' (the default). */
  transportProtocol?: string;
  /** ALPN offered in the ClientHello, or what http_inspector detected (http/1.1, h2c). */
  applicationProtocols?: string[];
}

function ipv4ToInt(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  return parts.reduce((acc, p) => (acc << 8) + Number(p), 0) >>> 0;
}

function inRange(ip: string, range: PrefixRange): boolean {
  const a = ipv4ToInt(ip);
  const b = ipv4ToInt(range.address);
  if (a === undefined || b === undefined) return false;
  if (range.prefixLen === 0) return true;
  const mask = (~0 << (32 - range.prefixLen)) >>> 0;
  return (a & mask) === (b & mask);
}

/** Longest matching prefix length of the ranges (-1: none matches). */
function longestPrefix(ip: string, ranges: readonly PrefixRange[]): number {
  let best = -1;
  for (const r of ranges) if (r.prefixLen > best && inRange(ip, r)) best = r.prefixLen;
  return best;
}

/** Keeps the candidates scoring highest (score >= 0); if none scores, those that do not constrain this level. */
function narrow(chains: FilterChain[], unconstrained: (c: FilterChain) => boolean, score: (c: FilterChain) => number): FilterChain[] {
  let best = -1;
  for (const c of chains) if (!unconstrained(c)) best = Math.max(best, score(c));
  if (best >= 0) return chains.filter((c) => !unconstrained(c) && score(c) === best);
  return chains.filter(unconstrained);
}

/** Server-name score: exact beats the longest `*.` wildcard suffix (-1: no match). */
function serverNameScore(names: readonly string[], sni: string | undefined): number {
  if (!sni) return -1;
  const host = sni.toLowerCase();
  let best = -1;
  for (const n of names) {
    if (n === host) return Number.MAX_SAFE_INTEGER;
    if (n.startsWith('*.') && host.endsWith(n.slice(1)) && host.length > n.length - 1) best = Math.max(best, n.length);
  }
  return best;
}

export function selectFilterChain(listener: ListenerConfig, info: ConnectionMatchInfo | SocketAddress): FilterChain | undefined {
  const conn: ConnectionMatchInfo = 'destination' in info ? info : { destination: info };
  const dst = conn.destination;
  const transport = conn.transportProtocol ?? 'raw_buffer';
  const alpn = conn.applicationProtocols ?? [];
  let c = listener.filterChains;
  c = narrow(c, (x) => x.match.destinationPort === undefined, (x) => (x.match.destinationPort === dst.port ? 1 : -1));
  c = narrow(c, (x) => x.match.prefixRanges.length === 0, (x) => longestPrefix(dst.address, x.match.prefixRanges));
  c = narrow(c, (x) => x.match.serverNames.length === 0, (x) => serverNameScore(x.match.serverNames, conn.serverName));
  c = narrow(c, (x) => x.match.transportProtocol === undefined, (x) => (x.match.transportProtocol === transport ? 1 : -1));
  c = narrow(c, (x) => x.match.applicationProtocols.length === 0, (x) => (x.match.applicationProtocols.some((p) => alpn.includes(p)) ? 1 : -1));
  const src = conn.source;
  c = narrow(c, (x) => x.match.sourcePrefixRanges.length === 0, (x) => (src ? longestPrefix(src.address, x.match.sourcePrefixRanges) : -1));
  c = narrow(c, (x) => x.match.sourcePorts.length === 0, (x) => (src && x.match.sourcePorts.includes(src.port) ? 1 : -1));
  return c[0] ?? listener.defaultFilterChain;
}

/** Which listener filters the chains need to be told apart (Envoy adds the inspectors itself too). */
export function inspectionNeeds(listener: ListenerConfig): { tls: boolean; http: boolean } {
  let tls = listener.tlsInspector;
  let http = listener.httpInspector;
  // A TLS chain needs the ClientHello's ALPN to answer a client whose protocols do not overlap.
  if (listener.defaultFilterChain?.tls) tls = true;
  for (const ch of listener.filterChains) {
    if (ch.tls) tls = true;
    if (ch.match.serverNames.length > 0 || ch.match.transportProtocol === 'tls') tls = true;
    if (ch.match.applicationProtocols.some((p) => p === 'http/1.1' || p === 'http/1.0' || p === 'h2c')) http = true;
    if (ch.match.applicationProtocols.length > 0 && !http) tls = true;
  }
  return { tls, http };
}
