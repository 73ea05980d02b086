import { createHash } from 'node:crypto';

/** Linux IFNAMSIZ is 16 including the NUL byte. */
export const IFNAMSIZ_CHARS = 15;
/** iptables chain names hold at most 28 characters (XT_EXTENSION_MAXNAMELEN - 1). */
export const CHAIN_NAME_MAX = 28;
const BRIDGE_SUFFIX = '-br0';
/** Longest prefix whose bridge name `<prefix>-br0` still fits IFNAMSIZ. */
export const PREFIX_MAX = IFNAMSIZ_CHARS - BRIDGE_SUFFIX.length;

/**
 * A prefix names every network object of one cluster (links, netns, iptables chains), so
 * a crashed run can be found and purged. Lowercase letters and digits only: no dash, so
 * `<prefix>-...` can never be confused with another prefix's objects.
 */
export function validatePrefix(prefix: string): void {
  if (!/^[a-z][a-z0-9]*$/.test(prefix)) {
    throw new Error(`network prefix "${prefix}": must be lowercase letters and digits, starting with a letter`);
  }
  if (prefix.length > PREFIX_MAX) {
    throw new Error(
      `network prefix "${prefix}": ${prefix.length} characters, at most ${PREFIX_MAX} allowed ` +
        `(the bridge "${prefix}${BRIDGE_SUFFIX}" must fit the ${IFNAMSIZ_CHARS}-character interface name limit)`,
    );
  }
}

export function bridgeName(prefix: string): string {
  return `${prefix}${BRIDGE_SUFFIX}`;
}

/** Most nodes one embedded cluster runs: node indexes are one digit in bridge and kubelet names. */
export const MAX_NODES = 10;

/** Node i's bridge `<prefix>-br<i>` (node 0's is bridgeName(prefix)); fits IFNAMSIZ for i < MAX_NODES. */
export function nodeBridgeName(prefix: string, index: number): string {
  if (!Number.isInteger(index) || index < 0 || index >= MAX_NODES) throw new Error(`node index ${index}: must be 0..${MAX_NODES - 1}`);
  return `${prefix}-br${index}`;
}

/** iptables interface wildcard matching every node bridge of the prefix (and nothing else). */
export function bridgeWildcard(prefix: string): string {
  return `${prefix}-br+`;
}

/**
 * Netns names of the prefix: `<prefix>-*` (one node) and `<prefix><digit>-*` (the
 * kubelet of node <digit> in a cluster of several nodes).
 */
export function isPrefixNetns(prefix: string, name: string): boolean {
  return new RegExp(`^${prefix}\\d?-`).test(name);
}

/** iptables chains carry the prefix in upper case, the way KUBE-* chains look. */
export function chainPrefix(prefix: string): string {
  return `${prefix.toUpperCase()}-`;
}

export function chainName(prefix: string, suffix: string): string {
  const name = chainPrefix(prefix) + suffix;
  if (name.length > CHAIN_NAME_MAX) throw new Error(`iptables chain "${name}": longer than ${CHAIN_NAME_MAX} characters`);
  return name;
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** Stable short hash for chain names (base32 of sha256, like kube-proxy's SVC/SEP chains). */
export function shortHash(text: string, length = 12): string {
  const digest = createHash('sha256').update(text).digest();
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of digest) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < length) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    if (out.length >= length) break;
  }
  return out;
}
