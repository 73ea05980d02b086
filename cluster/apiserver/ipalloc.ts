// ClusterIP allocation from the service CIDR. The first address (network) and the last
// (broadcast) are never handed out; .1 belongs to the `kubernetes` Service and .10 to
// cluster DNS: those two are given only when explicitly requested.
import { randomInt } from 'node:crypto';

export function ipToInt(ip: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0] << 24) >>> 0) + (parts[1] << 16) + (parts[2] << 8) + parts[3];
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function parseCidr(cidr: string): { base: number; size: number } {
  const [ip, bitsStr] = cidr.split('/');
  const bits = Number(bitsStr);
  const n = ipToInt(ip);
  if (n === undefined || !Number.isInteger(bits) || bits < 8 || bits > 30) throw new Error(`invalid service CIDR ${cidr}`);
  const size = 2 ** (32 - bits);
  return { base: n - (n % size), size };
}

export class ServiceIPAllocator {
  private readonly base: number;
  private readonly size: number;
  private used = new Set<number>();

  constructor(readonly cidr: string) {
    ({ base: this.base, size: this.size } = parseCidr(cidr));
  }

  /** The n-th address of the range (1 = the kubernetes Service, 10 = DNS). */
  nth(n: number): string { return intToIp(this.base + n); }

  contains(ip: string): boolean {
    const n = ipToInt(ip);
    return n !== undefined && n > this.base && n < this.base + this.size - 1;
  }

  /** Marks an address in use (rebuilding state from stored Services); false if taken. */
  claim(ip: string): boolean {
    const n = ipToInt(ip);
    if (n === undefined || !this.contains(ip) || this.used.has(n)) return false;
    this.used.add(n);
    return true;
  }

  allocate(): string | undefined {
    const reserved = new Set([this.base + 1, this.base + 10]);
    const first = this.base + 1;
    const count = this.size - 2;
    const start = randomInt(count);
    for (let i = 0; i < count; i++) {
      const n = first + ((start + i) % count);
      if (reserved.has(n) || this.used.has(n)) continue;
      this.used.add(n);
      return intToIp(n);
    }
    return undefined;
  }

  release(ip: string): void {
    const n = ipToInt(ip);
    if (n !== undefined) this.used.delete(n);
  }
}
