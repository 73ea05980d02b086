// Host selection for one cluster. State (the round robin cursor, the hash ring) lives as
// long as the cluster name, so config updates do not reset the rotation.
import type { Endpoint } from '../xds/resources/endpoint.js';
import type { LbPolicy } from '../xds/resources/cluster.js';
import type { LbSettings } from '../xds/resources/cluster-policies.js';

export interface PickContext {
  /** The request's hash (route hash_policy), for RING_HASH. */
  hash?: number;
  /** In-flight requests to a host, for LEAST_REQUEST. */
  active(e: Endpoint): number;
}

export interface LoadBalancer {
  pick(endpoints: readonly Endpoint[], ctx: PickContext): Endpoint | undefined;
}

export class RoundRobin implements LoadBalancer {
  private cursor = 0;
  pick(endpoints: readonly Endpoint[]): Endpoint | undefined {
    if (endpoints.length === 0) return undefined;
    this.cursor = (this.cursor + 1) % endpoints.length;
    return endpoints[this.cursor];
  }
}

export class RandomLb implements LoadBalancer {
  pick(endpoints: readonly Endpoint[]): Endpoint | undefined {
    return endpoints.length === 0 ? undefined : endpoints[Math.floor(Math.random() * endpoints.length)];
  }
}

/** Envoy's LEAST_REQUEST with equal weights: the least loaded of choice_count random hosts. */
export class LeastRequest implements LoadBalancer {
  constructor(private readonly choiceCount: number) {}
  pick(endpoints: readonly Endpoint[], ctx: PickContext): Endpoint | undefined {
    if (endpoints.length === 0) return undefined;
    let best = endpoints[Math.floor(Math.random() * endpoints.length)];
    for (let i = 1; i < this.choiceCount; i++) {
      const c = endpoints[Math.floor(Math.random() * endpoints.length)];
      if (ctx.active(c) < ctx.active(best)) best = c;
    }
    return best;
  }
}

const MASK64 = 0xffffffffffffffffn;

/**
 * 64-bit FNV-1a with MurmurHash3's fmix64 finalizer, folded to 32 bits: stable across
 * processes, which consistent hashing needs. Without the finalizer, keys that differ only in
 * their last characters (user-1, user-2; host_1, host_2) land close together on the ring and
 * all map to one host.
 */
export function hash32(s: string): number {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < s.length; i++) {
    h ^= BigInt(s.charCodeAt(i));
    h = (h * 0x100000001b3n) & MASK64;
  }
  h ^= h >> 33n;
  h = (h * 0xff51afd7ed558ccdn) & MASK64;
  h ^= h >> 33n;
  h = (h * 0xc4ceb9fe1a85ec53n) & MASK64;
  h ^= h >> 33n;
  return Number((h ^ (h >> 32n)) & 0xffffffffn);
}

/** Ketama-style ring: each host gets ring entries in proportion to its weight. */
export class RingHash implements LoadBalancer {
  private ring: Array<[number, Endpoint]> = [];
  private key = '';

  constructor(private readonly settings: LbSettings) {}

  private build(endpoints: readonly Endpoint[]): void {
    const key = endpoints.map((e) => `${e.address}:${e.port}/${e.weight}`).join(',');
    if (key === this.key) return;
    this.key = key;
    const totalWeight = endpoints.reduce((s, e) => s + e.weight, 0) || 1;
    const size = Math.min(Math.max(this.settings.minimumRingSize, endpoints.length), this.settings.maximumRingSize);
    const ring: Array<[number, Endpoint]> = [];
    for (const e of endpoints) {
      const n = Math.max(1, Math.round((size * e.weight) / totalWeight));
      for (let i = 0; i < n; i++) ring.push([hash32(`${e.address}:${e.port}_${i}`), e]);
    }
    ring.sort((a, b) => a[0] - b[0]);
    this.ring = ring;
  }

  pick(endpoints: readonly Endpoint[], ctx: PickContext): Endpoint | undefined {
    if (endpoints.length === 0) return undefined;
    this.build(endpoints);
    // No hash (no policy produced one): Envoy picks a random point on the ring.
    const h = ctx.hash ?? Math.floor(Math.random() * 0x100000000);
    let lo = 0;
    let hi = this.ring.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.ring[mid][0] < h) lo = mid + 1;
      else hi = mid;
    }
    return this.ring[lo === this.ring.length ? 0 : lo][1];
  }
}

export function createLoadBalancer(policy: LbPolicy, settings: LbSettings): LoadBalancer {
  switch (policy) {
    case 'RANDOM': return new RandomLb();
    case 'LEAST_REQUEST': return new LeastRequest(settings.choiceCount);
    case 'RING_HASH': return new RingHash(settings);
    default: return new RoundRobin();
  }
}

/** Picks one of several weighted choices: a uniform draw over the sum of the weights. */
export function pickWeighted<T extends { weight: number }>(choices: readonly T[], total: number, random = Math.random): T | undefined {
  let r = random() * total;
  for (const c of choices) {
    if (r < c.weight) return c;
    r -= c.weight;
  }
  return undefined;
}
