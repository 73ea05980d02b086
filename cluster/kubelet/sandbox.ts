// The pod sandbox: a network namespace joined to the node bridge by a veth pair. The pod
// side is created directly inside the namespace as eth0, so no temporary name can clash.
// Set-up runs two `ip -batch` processes (one in the root namespace, one inside the pod's)
// instead of one process per step: process start-up was most of a sandbox's cost.
import fs from 'node:fs';
import { mustRun, runCommand } from '../network/exec.js';
import { isOurNetns, isOurVeth, sandboxNames } from './names.js';

export interface SandboxSpec {
  prefix: string;
  podUID: string;
  bridge: string;
  gatewayIP: string;
  podIP: string;
  prefixLength: number;
}

export interface Sandbox { netns: string; hostVeth: string; podIP: string }

export function netnsPath(netns: string): string {
  return `/run/netns/${netns}`;
}

/** `ip netns` keeps a named namespace as a bind mount in /run/netns: no process needed to ask. */
function netnsExists(name: string): boolean {
  return fs.existsSync(netnsPath(name));
}

/** A link of the root namespace, by its sysfs entry. */
function linkExists(name: string): boolean {
  return fs.existsSync(`/sys/class/net/${name}`);
}

/** Whether an existing sandbox is complete: eth0 with the address, host veth on the bridge. */
async function sandboxComplete(s: SandboxSpec, netns: string, hostVeth: string): Promise<boolean> {
  const addr = await runCommand('ip', ['-n', netns, '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
  if (addr.code !== 0 || !addr.stdout.includes(` ${s.podIP}/${s.prefixLength} `)) return false;
  const link = await runCommand('ip', ['-o', 'link', 'show', 'dev', hostVeth]);
  return link.code === 0 && link.stdout.includes(` master ${s.bridge} `) && /<[^>]*\bUP\b[^>]*>/.test(link.stdout);
}

/** Creates the sandbox, or repairs it by recreating it when a piece is missing. Idempotent. */
export async function ensureSandbox(s: SandboxSpec): Promise<Sandbox> {
  const { netns, hostVeth } = sandboxNames(s.prefix, s.podUID);
  if (netnsExists(netns) && (await sandboxComplete(s, netns, hostVeth))) return { netns, hostVeth, podIP: s.podIP };
  if (netnsExists(netns) || linkExists(hostVeth)) await removeSandbox(s.prefix, s.podUID);

  // Names and addresses come from our own IPAM and hashes (no spaces or newlines), so the
  // batch lines cannot be confused; still, check before writing them.
  for (const v of [netns, hostVeth, s.bridge, s.podIP, s.gatewayIP]) {
    if (!/^[A-Za-z0-9_.-]+$/.test(v)) throw new Error(`pod ${s.podUID} sandbox: "${v}" is not a valid name or address`);
  }
  try {
    await mustRun('ip', ['-batch', '-'], [
      `netns add ${netns}`,
      `link add name ${hostVeth} type veth peer name eth0 netns ${netns}`,
      `link set dev ${hostVeth} master ${s.bridge}`,
      // Hairpin lets a pod reach itself through a Service address that DNATs back to it.
      `link set dev ${hostVeth} type bridge_slave hairpin on`,
      `link set dev ${hostVeth} up`,
      '',
    ].join('\n'));
    await mustRun('ip', ['-n', netns, '-batch', '-'], [
      'link set dev lo up',
      `addr add ${s.podIP}/${s.prefixLength} dev eth0`,
      'link set dev eth0 up',
      `route replace default via ${s.gatewayIP} dev eth0`,
      '',
    ].join('\n'));
  } catch (e) {
    await removeSandbox(s.prefix, s.podUID).catch(() => undefined);
    throw new Error(`pod ${s.podUID} sandbox ${netns}: ${(e as Error).message}`);
  }
  return { netns, hostVeth, podIP: s.podIP };
}

/** Removes the pod's netns and veth; a missing piece is not an error. */
export async function removeSandbox(prefix: string, podUID: string): Promise<void> {
  const { netns, hostVeth } = sandboxNames(prefix, podUID);
  await removeNetworkObjects(netns, hostVeth);
}

async function removeNetworkObjects(netns: string | undefined, hostVeth: string | undefined): Promise<void> {
  const errors: string[] = [];
  if (hostVeth && linkExists(hostVeth)) {
    const r = await runCommand('ip', ['link', 'delete', 'dev', hostVeth]);
    if (r.code !== 0 && linkExists(hostVeth)) errors.push(`veth ${hostVeth}: ${r.stderr.trim()}`);
  }
  if (netns && netnsExists(netns)) {
    const r = await runCommand('ip', ['netns', 'delete', netns]);
    if (r.code !== 0 && netnsExists(netns)) errors.push(`netns ${netns}: ${r.stderr.trim()}`);
  }
  if (errors.length) throw new Error(`sandbox cleanup: ${errors.join('; ')}`);
}

/** PIDs of processes whose network namespace is `netns`. */
export async function netnsPids(netns: string): Promise<number[]> {
  const r = await runCommand('ip', ['netns', 'pids', netns]);
  if (r.code !== 0) return [];
  return r.stdout.split('\n').map((l) => Number(l.trim())).filter((n) => Number.isInteger(n) && n > 0);
}

/**
 * Removes sandboxes left by a crashed run of this kubelet: every netns and veth matching
 * our naming. Processes still inside such a namespace were started by that run (only the
 * kubelet puts processes there), so they are killed first.
 */
export async function removeLeftoverSandboxes(prefix: string): Promise<string[]> {
  const removed: string[] = [];
  const list = await runCommand('ip', ['netns', 'list']);
  for (const line of list.stdout.split('\n')) {
    const name = line.split(' ')[0];
    if (!name || !isOurNetns(prefix, name)) continue;
    for (const pid of await netnsPids(name)) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
    }
    await removeNetworkObjects(name, undefined);
    removed.push(name);
  }
  const links = await runCommand('ip', ['-o', 'link', 'show', 'type', 'veth']);
  for (const line of links.stdout.split('\n')) {
    const m = /^\d+:\s+([^:@\s]+)/.exec(line);
    if (m && isOurVeth(prefix, m[1])) {
      await removeNetworkObjects(undefined, m[1]);
      removed.push(m[1]);
    }
  }
  return removed;
}

/** Our netns and veth names currently on the host (for tests and diagnostics). */
export async function listSandboxObjects(prefix: string): Promise<string[]> {
  const out: string[] = [];
  const list = await runCommand('ip', ['netns', 'list']);
  for (const line of list.stdout.split('\n')) {
    const name = line.split(' ')[0];
    if (name && isOurNetns(prefix, name)) out.push(name);
  }
  const links = await runCommand('ip', ['-o', 'link', 'show']);
  for (const line of links.stdout.split('\n')) {
    const m = /^\d+:\s+([^:@\s]+)/.exec(line);
    if (m && isOurVeth(prefix, m[1])) out.push(m[1]);
  }
  return out;
}
