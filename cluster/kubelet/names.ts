// Names of the per-pod network objects. They carry the kubelet's prefix so a crashed run's
// leftovers can be found from the live system alone (ip netns list, ip link).
import { createHash } from 'node:crypto';

const IFNAMSIZ_CHARS = 15;
const MAX_HASH = 10;

/** Hash length for a prefix: the host veth `<prefix><hash>` must fit the 15-character limit. */
export function hashLength(prefix: string): number {
  return Math.min(MAX_HASH, IFNAMSIZ_CHARS - prefix.length);
}

/** A short, stable, lowercase hash of a pod UID (base36 of sha256). */
export function podHash(prefix: string, podUID: string): string {
  const digest = createHash('sha256').update(podUID).digest();
  let n = BigInt(`0x${digest.subarray(0, 12).toString('hex')}`);
  let out = '';
  const len = hashLength(prefix);
  while (out.length < len) {
    out += (n % 36n).toString(36);
    n /= 36n;
  }
  return out;
}

export interface SandboxNames { netns: string; hostVeth: string }

export function sandboxNames(prefix: string, podUID: string): SandboxNames {
  const h = podHash(prefix, podUID);
  return { netns: `${prefix}-${h}`, hostVeth: `${prefix}${h}` };
}

/** Matches the netns names this kubelet creates (not the bridge or other helpers' objects). */
export function isOurNetns(prefix: string, name: string): boolean {
  return new RegExp(`^${prefix}-[0-9a-z]{${hashLength(prefix)}}$`).test(name);
}

export function isOurVeth(prefix: string, name: string): boolean {
  return new RegExp(`^${prefix}[0-9a-z]{${hashLength(prefix)}}$`).test(name);
}
