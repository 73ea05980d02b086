// Names of the per-pod network objects. They carry the kubelet's prefix so a crashed run's
// leftovers can be found from the live system alone (ip netns list, ip link).
import { createHash } from 'node:crypto';
import { NAME_SEPARATOR } from '../network/names.js';

const IFNAMSIZ_CHARS = 15;
const MAX_HASH = 10;

/**
 * The start of a pod's host veth name: `<prefix>-` for a cluster prefix, `<prefix>-<i>` for
 * node i's kubelet prefix. Either way the cluster prefix is followed by the separator, so
 * the veth belongs to its cluster only (see network/names.ts).
 */
function vethStem(prefix: string): string {
  return prefix.includes(NAME_SEPARATOR) ? prefix : `${prefix}${NAME_SEPARATOR}`;
}

/** Hash length for a prefix: the host veth `<stem><hash>` must fit the 15-character limit. */
export function hashLength(prefix: string): number {
  return Math.min(MAX_HASH, IFNAMSIZ_CHARS - vethStem(prefix).length);
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

/** netns `<prefix>-<hash>`, host veth `<prefix>-<hash>` or, for node prefixes, `<prefix>-<i><hash>`. */
export function sandboxNames(prefix: string, podUID: string): SandboxNames {
  const h = podHash(prefix, podUID);
  return { netns: `${prefix}${NAME_SEPARATOR}${h}`, hostVeth: `${vethStem(prefix)}${h}` };
}

/** Matches the netns names this kubelet creates (not the bridge or other helpers' objects). */
export function isOurNetns(prefix: string, name: string): boolean {
  return new RegExp(`^${prefix}${NAME_SEPARATOR}[0-9a-z]{${hashLength(prefix)}}$`).test(name);
}

export function isOurVeth(prefix: string, name: string): boolean {
  return new RegExp(`^${vethStem(prefix)}[0-9a-z]{${hashLength(prefix)}}$`).test(name);
}
