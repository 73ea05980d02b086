// FilterChainMatch: decode and validate every criterion Envoy's hierarchical chain
// selection uses (destination port and IP, server names, transport and application
// protocols, source IP and port).
import { arr, FieldErrors, num, obj, str, wrapped, type Obj } from './fields.js';

export interface PrefixRange {
  address: string;
  prefixLen: number;
}

export interface FilterChainMatchSpec {
  destinationPort?: number;
  prefixRanges: PrefixRange[];
  /** Lower-cased; exact names and `*.suffix` wildcards. */
  serverNames: string[];
  transportProtocol?: string;
  applicationProtocols: string[];
  sourcePrefixRanges: PrefixRange[];
  sourcePorts: number[];
}

function isPort(n: number | undefined): n is number {
  return n !== undefined && Number.isInteger(n) && n >= 1 && n <= 65535;
}

function prefixRanges(v: unknown, field: string, errors: FieldErrors): PrefixRange[] {
  const out: PrefixRange[] = [];
  arr(v).forEach((p, i) => {
    const po = obj(p) ?? {};
    const address = str(po.addressPrefix) ?? '';
    const prefixLen = num(wrapped(po.prefixLen)) ?? 32;
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(address) || address.split('.').some((o) => Number(o) > 255)) {
      errors.add(`${field}[${i}].addressPrefix`, `"${address}" is not an IPv4 address`);
    } else if (!Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > 32) {
      errors.add(`${field}[${i}].prefixLen`, `${String(prefixLen)} is not a prefix length (0-32)`);
    } else {
      out.push({ address, prefixLen });
    }
  });
  return out;
}

function strings(v: unknown, field: string, errors: FieldErrors): string[] {
  const out: string[] = [];
  arr(v).forEach((s, i) => {
    if (typeof s !== 'string' || s === '') errors.add(`${field}[${i}]`, 'must be a non-empty string');
    else out.push(s);
  });
  return out;
}

export function decodeFilterChainMatch(match: Obj, field: string, errors: FieldErrors): FilterChainMatchSpec {
  let destinationPort: number | undefined;
  if (match.destinationPort !== undefined) {
    destinationPort = num(wrapped(match.destinationPort));
    if (!isPort(destinationPort)) {
      errors.add(`${field}.destinationPort`, `${JSON.stringify(match.destinationPort)} is not a port`);
      destinationPort = undefined;
    }
  }
  const serverNames = strings(match.serverNames, `${field}.serverNames`, errors).map((s) => s.toLowerCase());
  serverNames.forEach((s, i) => {
    // Envoy accepts a wildcard only as the whole leftmost label.
    if (s.includes('*') && !(s.startsWith('*.') && !s.slice(1).includes('*'))) {
      errors.add(`${field}.serverNames[${i}]`, `"${s}": a wildcard must be the leftmost label ("*.example.com")`);
    }
  });
  let transportProtocol: string | undefined;
  if (match.transportProtocol !== undefined && match.transportProtocol !== '') {
    transportProtocol = str(match.transportProtocol);
    if (transportProtocol === undefined) errors.add(`${field}.transportProtocol`, 'must be a string ("tls" or "raw_buffer")');
  }
  const sourceType = str(match.sourceType) ?? 'ANY';
  if (sourceType !== 'ANY') errors.add(`${field}.sourceType`, `"${sourceType}" is not supported (ANY)`);
  if (arr(match.directSourcePrefixRanges).length > 0) errors.add(`${field}.directSourcePrefixRanges`, 'is not supported');
  if (match.addressSuffix !== undefined || match.suffixLen !== undefined) errors.add(`${field}.addressSuffix`, 'is not supported');
  const sourcePorts: number[] = [];
  arr(match.sourcePorts).forEach((p, i) => {
    const n = num(p);
    if (!isPort(n)) errors.add(`${field}.sourcePorts[${i}]`, `${JSON.stringify(p)} is not a port`);
    else sourcePorts.push(n);
  });
  return {
    destinationPort,
    prefixRanges: prefixRanges(match.prefixRanges, `${field}.prefixRanges`, errors),
    serverNames,
    transportProtocol,
    applicationProtocols: strings(match.applicationProtocols, `${field}.applicationProtocols`, errors),
    sourcePrefixRanges: prefixRanges(match.sourcePrefixRanges, `${field}.sourcePrefixRanges`, errors),
    sourcePorts,
  };
}
