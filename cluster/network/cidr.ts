/** Minimal IPv4 CIDR arithmetic for the node network. */
export interface Ipv4Cidr {
  network: number; // host byte order, masked
  prefixLength: number;
}

export function parseIpv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    value = value * 256 + n;
  }
  return value;
}

export function formatIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

export function parseCidr(text: string, field: string): Ipv4Cidr {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(text);
  const ip = m ? parseIpv4(m[1]) : undefined;
  const len = m ? Number(m[2]) : NaN;
  if (!m || ip === undefined || len > 32) throw new Error(`${field}: "${text}" is not an IPv4 CIDR`);
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return { network: (ip & mask) >>> 0, prefixLength: len };
}

export function formatCidr(c: Ipv4Cidr): string {
  return `${formatIpv4(c.network)}/${c.prefixLength}`;
}

export function cidrContains(outer: Ipv4Cidr, inner: Ipv4Cidr): boolean {
  if (inner.prefixLength < outer.prefixLength) return false;
  const mask = outer.prefixLength === 0 ? 0 : (0xffffffff << (32 - outer.prefixLength)) >>> 0;
  return ((inner.network & mask) >>> 0) === outer.network;
}
