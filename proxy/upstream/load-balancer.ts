// Host selection for one cluster. State (the round robin cursor) lives as long as the
// cluster name, so config updates do not reset the rotation.
import type { Endpoint } from '../xds/resources/endpoint.js';
import type { LbPolicy } from '../xds/resources/cluster.js';

export interface LoadBalancer {
  pick(endpoints: readonly Endpoint[]): Endpoint | undefined;
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

export function createLoadBalancer(policy: LbPolicy): LoadBalancer {
  // LEAST_REQUEST falls back to round robin until request counts are tracked per host.
  return policy === 'RANDOM' ? new RandomLb() : new RoundRobin();
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
