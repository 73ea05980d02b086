// Applies and removes the interception rules in the current network namespace, with the
// iptables backend the host uses, in one iptables-restore transaction: our chains are
// (re)declared, which flushes them, and the jumps into them that already exist are deleted
// and added once, so a re-run (a restarted init container) never doubles a jump and the
// table is never seen half-written.
import { spawnSync } from 'node:child_process';
import { backendCommands, detectBackend, type BackendChoice } from './backend.js';
import { buildNatRules, CHAINS, JUMPS, type InterceptionConfig } from './iptables-rules.js';

function run(cmd: string, args: string[], input?: string): { ok: boolean; out: string } {
  const res = spawnSync(cmd, args, { input, encoding: 'utf8' });
  if (res.error) return { ok: false, out: `${cmd}: ${res.error.message}` };
  return { ok: res.status === 0, out: `${res.stdout ?? ''}${res.stderr ?? ''}`.trim() };
}

function choice(cfg?: Pick<InterceptionConfig, 'backend'>): BackendChoice {
  return cfg?.backend ? { backend: cfg.backend, reason: '--iptables-backend' } : detectBackend();
}

/** How many times each of our jumps is in the nat table as iptables-save prints it. */
export function existingJumps(natSave: string): number[] {
  const lines = natSave.split('\n').map((l) => l.trim());
  return JUMPS.map((j) => lines.filter((l) => l === `-A ${j.join(' ')}`).length);
}

/** Removes our jumps and chains; missing pieces are fine (cleanup is idempotent). */
export function removeInterception(cfg?: Pick<InterceptionConfig, 'backend'>): void {
  const cmds = backendCommands(choice(cfg).backend);
  const nat = run(cmds.save, ['-t', 'nat']);
  const present = new Set(nat.out.split('\n').filter((l) => l.startsWith(':')).map((l) => l.slice(1).split(' ')[0]));
  const r = ['*nat'];
  existingJumps(nat.out).forEach((n, i) => { for (let k = 0; k < n; k++) r.push(`-D ${JUMPS[i].join(' ')}`); });
  for (const chain of CHAINS) if (present.has(chain)) r.push(`-F ${chain}`);
  for (const chain of CHAINS) if (present.has(chain)) r.push(`-X ${chain}`);
  r.push('COMMIT');
  if (r.length > 2) run(cmds.restore, ['--noflush'], r.join('\n') + '\n');
}

export interface AppliedInterception {
  rules: string;
  backend: BackendChoice;
  /** Jumps that were already there and got replaced (a re-run). */
  replacedJumps: number;
}

/**
 * Writes a fresh set of rules in one iptables-restore --noflush transaction (the rest of the
 * nat table is kept). Returns the rules and the backend used.
 */
export function applyInterception(cfg: InterceptionConfig): AppliedInterception {
  const backend = choice(cfg);
  const cmds = backendCommands(backend.backend);
  const rules = buildNatRules(cfg);
  const counts = existingJumps(run(cmds.save, ['-t', 'nat']).out);
  const deletes = counts.flatMap((n, i) => Array.from({ length: n }, () => `-D ${JUMPS[i].join(' ')}`));
  // Deletes go after the chain declarations and before the new rules, inside the same COMMIT.
  const lines = rules.trimEnd().split('\n');
  const firstRule = lines.findIndex((l) => l.startsWith('-A'));
  const input = [...lines.slice(0, firstRule), ...deletes, ...lines.slice(firstRule)].join('\n') + '\n';
  const res = run(cmds.restore, ['--noflush'], input);
  if (!res.ok) throw new Error(`istio-iptables: ${cmds.restore} failed: ${res.out || 'no output'}\nrules were:\n${input}`);
  return { rules, backend, replacedJumps: deletes.length };
}
