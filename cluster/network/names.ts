import { createHash } from 'node:crypto';

/** Linux IFNAMSIZ is 16 including the NUL byte. */
export const IFNAMSIZ_CHARS = 15;
/** iptables chain names hold at most 28 characters (XT_EXTENSION_MAXNAMELEN - 1). */
export const CHAIN_NAME_MAX = 28;
const BRIDGE_SUFFIX = '-br0';
/**
 * Separates a cluster prefix from the rest of every name it owns: `<prefix>-br0`,
 * `<prefix>-<hash>`, node-level `<prefix>-<i>...`. Prefixes may not contain it, so a name
 * `X-...` belongs to cluster `X` and to no other (not to `X1`, whose names are `X1-...`).
 */
export const NAME_SEPARATOR = '-';
/** Fewest hash characters in a pod's host veth name, so pods of one node do not collide. */
export const MIN_VETH_HASH = 5;
/**
 * Longest prefix: a pod's host veth on node i, `<prefix>-<i><hash>`, must fit IFNAMSIZ with
 * MIN_VETH_HASH hash characters (the bridge `<prefix>-br0` is shorter).
 */
export const PREFIX_MAX = IFNAMSIZ_CHARS - NAME_SEPARATOR.length - 1 - MIN_VETH_HASH;

/**
 * A prefix names every network object of one cluster (links, netns, iptables chains,
 * cgroups), so a crashed run can be found and purged. Lowercase letters and digits only:
 * no dash (NAME_SEPARATOR), so `<prefix>-...` can never be another prefix's object.
 */
export function validatePrefix(prefix: string): void {
  if (!/^[a-z][a-z0-9]*$/.test(prefix)) {
    throw new Error(
      `network prefix "${prefix}": must be lowercase letters and digits, starting with a letter ` +
        `("${NAME_SEPARATOR}" separates the prefix from node and pod names)`,
    );
  }
  if (prefix.length > PREFIX_MAX) {
    throw new Error(
      `network prefix "${prefix}": ${prefix.length} characters, at most ${PREFIX_MAX} allowed ` +
        `(a pod's host veth "${prefix}${NAME_SEPARATOR}<node><hash>" must fit the ${IFNAMSIZ_CHARS}-character interface name limit)`,
    );
  }
}

/**
 * The prefix of node i's kubelet in a cluster of several nodes: `<prefix>-<i>`. A single
 * node's kubelet uses the cluster prefix itself.
 */
export function nodePrefix(prefix: string, index: number): string {
  validatePrefix(prefix);
  if (!Number.isInteger(index) || index < 0 || index >= MAX_NODES) throw new Error(`node index ${index}: must be 0..${MAX_NODES - 1}`);
  return `${prefix}${NAME_SEPARATOR}${index}`;
}

/** A kubelet's prefix: a cluster prefix, or a node prefix `<cluster prefix>-<digit>`. */
export function validateKubeletPrefix(prefix: string): void {
  const m = /^([^-]*)-(\d)$/.exec(prefix);
  if (m) validatePrefix(m[1]);
  else if (prefix.includes(NAME_SEPARATOR)) throw new Error(`kubelet prefix "${prefix}": must be a network prefix or "<prefix>-<node digit>"`);
  else validatePrefix(prefix);
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
 * Whether a netns or link name belongs to the prefix: `<prefix>-*` (bridges, a single
 * node's pods, and the pods of node-level kubelets `<prefix>-<i>`).
 */
export function isPrefixNetns(prefix: string, name: string): boolean {
  return name.startsWith(`${prefix}${NAME_SEPARATOR}`);
}

/** Links of the prefix: the same rule as netns names. */
export const isPrefixLink = isPrefixNetns;

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
