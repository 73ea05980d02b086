// What tests need to know about the machine: root, commands, and what a prefix left behind.
import { execFileSync } from 'node:child_process';

export function isRoot(): boolean { return process.getuid?.() === 0; }

export function hasCommand(cmd: string): boolean {
  try { execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }); return true; } catch { return false; }
}

/** Why a network test cannot run here, or undefined when it can. */
export function networkSkipReason(): string | undefined {
  if (!isRoot()) return 'needs root: creates network namespaces, veths and iptables rules';
  for (const cmd of ['ip', 'iptables', 'iptables-restore', 'nsenter', 'setpriv']) {
    if (!hasCommand(cmd)) return `needs ${cmd} (Debian packages iproute2/iptables/util-linux; npm test installs them as root)`;
  }
  return undefined;
}

function run(cmd: string, args: string[]): string {
  try { return execFileSync(cmd, args, { encoding: 'utf8' }); } catch { return ''; }
}

/** Network objects whose name carries the prefix: netns, links, iptables chains, routes. */
export function leftovers(prefix: string, cidrs: string[]): string[] {
  const found: string[] = [];
  for (const line of run('ip', ['netns', 'list']).split('\n')) if (line.startsWith(prefix)) found.push(`netns ${line.split(' ')[0]}`);
  for (const line of run('ip', ['-o', 'link', 'show']).split('\n')) {
    const name = line.split(':')[1]?.trim().split('@')[0];
    if (name?.startsWith(prefix)) found.push(`link ${name}`);
  }
  const upper = prefix.toUpperCase();
  for (const table of ['nat', 'filter']) {
    for (const line of run('iptables', ['-t', table, '-S']).split('\n')) {
      if (line.includes(upper) || line.includes(prefix)) found.push(`iptables ${table}: ${line}`);
    }
  }
  for (const line of run('ip', ['route', 'show', 'table', 'all']).split('\n')) {
    if (cidrs.some((c) => line.includes(c.split('/')[0].split('.').slice(0, 2).join('.') + '.'))) found.push(`route ${line}`);
  }
  return found;
}
