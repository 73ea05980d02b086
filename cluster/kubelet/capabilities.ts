// Container privileges as a container runtime sets them: the runtime's default capability
// set with securityContext.capabilities add/drop applied (containerd's CRI order: ALL first,
// then the named ones), every capability for privileged containers, no_new_privs for
// allowPrivilegeEscalation: false. Applied by setpriv as the last step before the program
// runs (after the namespaces, mounts and cgroup are set up with the kubelet's own rights).
import fs from 'node:fs';
import type { Container, Pod } from '../../api/kube/types.js';

/** Linux capabilities by number (CAP_CHOWN = 0 ... CAP_CHECKPOINT_RESTORE = 40), without `CAP_`. */
export const LINUX_CAPABILITIES = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP',
  'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER',
  'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE',
  'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP',
  'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF',
  'CHECKPOINT_RESTORE',
] as const;

/** Docker's and containerd's default set (moby oci/caps/defaults.go, containerd oci/spec.go). */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'NET_RAW', 'SETGID', 'SETUID', 'SETFCAP', 'SETPCAP',
  'NET_BIND_SERVICE', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE',
];

export interface Privileges {
  uid: number;
  gid: number;
  /** Capabilities the container may hold (its bounding set); undefined: all (privileged). */
  capabilities?: string[];
  noNewPrivs: boolean;
}

export class CapabilityError extends Error {}

/** `NET_ADMIN` or `CAP_NET_ADMIN` (any case) -> `NET_ADMIN`; ALL stays ALL. */
function capName(raw: string, where: string): string {
  const name = raw.toUpperCase().replace(/^CAP_/, '');
  if (name !== 'ALL' && !(LINUX_CAPABILITIES as readonly string[]).includes(name)) throw new CapabilityError(`${where}: unknown capability "${raw}"`);
  return name;
}

/** The privileges of a container from its and its pod's securityContext. `where` names the container field. */
export function containerPrivileges(pod: Pod, c: Container, where: string): Privileges {
  const sc = c.securityContext ?? {};
  const psc = pod.spec.securityContext ?? {};
  const uid = sc.runAsUser ?? psc.runAsUser ?? 0;
  const gid = sc.runAsGroup ?? psc.runAsGroup ?? 0;
  const add = (sc.capabilities?.add ?? []).map((n, i) => capName(n, `${where}.securityContext.capabilities.add[${i}]`));
  const drop = (sc.capabilities?.drop ?? []).map((n, i) => capName(n, `${where}.securityContext.capabilities.drop[${i}]`));
  if (sc.privileged) return { uid, gid, capabilities: undefined, noNewPrivs: false };
  let caps = new Set<string>(DEFAULT_CAPABILITIES);
  if (add.includes('ALL')) caps = new Set(LINUX_CAPABILITIES);
  if (drop.includes('ALL')) caps = new Set();
  for (const n of add) if (n !== 'ALL') caps.add(n);
  for (const n of drop) if (n !== 'ALL') caps.delete(n);
  const ordered = LINUX_CAPABILITIES.filter((n) => caps.has(n));
  return { uid, gid, capabilities: ordered, noNewPrivs: sc.allowPrivilegeEscalation === false };
}

let lastCap: number | undefined;
/** The highest capability number this kernel knows (newer names are left out of setpriv's list). */
function kernelLastCap(): number {
  if (lastCap === undefined) {
    try { lastCap = Number(fs.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim()); } catch { lastCap = LINUX_CAPABILITIES.length - 1; }
  }
  return lastCap;
}

/**
 * setpriv options (before its `--`): user and group, then for unprivileged containers the
 * bounding set limited to the capabilities (a root process gets exactly those at exec; a
 * non-root one none, as with Docker) and an empty inheritable set (which also empties the
 * ambient set), and no_new_privs when asked.
 */
export function setprivArgs(p: Privileges): string[] {
  const args = ['--reuid', String(p.uid), '--regid', String(p.gid), '--clear-groups'];
  if (p.capabilities !== undefined) {
    const known = p.capabilities.filter((n) => (LINUX_CAPABILITIES as readonly string[]).indexOf(n) <= kernelLastCap());
    args.push('--bounding-set', ['-all', ...known.map((n) => `+${n.toLowerCase()}`)].join(','), '--inh-caps', '-all');
  }
  if (p.noNewPrivs) args.push('--no-new-privs');
  return args;
}
