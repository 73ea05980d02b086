// Applies and removes the interception rules in the current network namespace.
import { spawnSync } from 'node:child_process';
import { buildNatRules, CHAINS, JUMPS, type InterceptionConfig } from './iptables-rules.js';

function run(cmd: string, args: string[], input?: string): { ok: boolean; out: string } {
  const res = spawnSync(cmd, args, { input, encoding: 'utf8' });
  if (res.error) return { ok: false, out: `${cmd}: ${res.error.message}` };
  return { ok: res.status === 0, out: `${res.stdout ?? ''}${res.stderr ?? ''}`.trim() };
}

/** Removes our jumps and chains; missing pieces are fine (cleanup is idempotent). */
export function removeInterception(): void {
  for (const jump of JUMPS) {
    // A rule may have been added more than once by an earlier, interrupted run.
    for (let i = 0; i < 16 && run('iptables', ['-t', 'nat', '-D', ...jump]).ok; i++);
  }
  for (const chain of CHAINS) run('iptables', ['-t', 'nat', '-F', chain]);
  for (const chain of CHAINS) run('iptables', ['-t', 'nat', '-X', chain]);
}

/**
 * Replaces any earlier rules with a fresh set, atomically through iptables-restore
 * (--noflush keeps the rest of the nat table). Returns the rules applied.
 */
export function applyInterception(cfg: InterceptionConfig): string {
  const rules = buildNatRules(cfg);
  removeInterception();
  const res = run('iptables-restore', ['--noflush'], rules);
  if (!res.ok) throw new Error(`istio-iptables: iptables-restore failed: ${res.out || 'no output'}\nrules were:\n${rules}`);
  return rules;
}
