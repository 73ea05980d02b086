// Chooses a listener's filter chain for a connection, Envoy style: a chain matching the
// destination port beats one without a port; chains without match criteria are the
// fallback; the defaultFilterChain is last.
import type { FilterChain, ListenerConfig, PrefixRange } from '../xds/resources/listener.js';
import type { SocketAddress } from '../interception/original-dst.js';

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

function matchesAddress(chain: FilterChain, dst: SocketAddress): boolean {
  return chain.prefixRanges.length === 0 || chain.prefixRanges.some((r) => inRange(dst.address, r));
}

export function selectFilterChain(listener: ListenerConfig, dst: SocketAddress): FilterChain | undefined {
  let portless: FilterChain | undefined;
  for (const chain of listener.filterChains) {
    if (!matchesAddress(chain, dst)) continue;
    if (chain.destinationPort === dst.port) return chain;
    if (chain.destinationPort === undefined) portless ??= chain;
  }
  return portless ?? listener.defaultFilterChain;
}
