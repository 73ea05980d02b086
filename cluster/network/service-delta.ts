import type { ChainRules, Ruleset } from './service-rules.js';

export interface DeltaInput {
  /**
   * The chains this proxy wrote last and knows to be in the kernel; undefined when that is
   * unknown (start-up, after a failed restore), which makes the delta a full rewrite.
   */
  written?: Ruleset;
  desired: Ruleset;
  /**
   * Full rewrite only: the proxy's own chains that exist in the kernel now (read with
   * iptables-save), so those no longer wanted are deleted, also after a crash.
   */
  existing?: { nat: readonly string[]; filter: readonly string[] };
}

export interface RuleDelta {
  /** Input for `iptables-restore --noflush`; '' when the kernel already holds `desired`. */
  restore: string;
  /** Chains declared (and so flushed) and refilled. */
  rewritten: string[];
  /** Chains deleted. */
  deleted: string[];
}

const TABLES = ['nat', 'filter'] as const;

function sameRules(a: readonly string[] | undefined, b: readonly string[]): boolean {
  return a !== undefined && a.length === b.length && a.every((line, i) => line === b[i]);
}

/**
 * The change that turns the written ruleset into the desired one, as kube-proxy's partial
 * sync computes it: only chains whose rules differ are declared (declaring flushes a chain)
 * and refilled; chains no longer wanted are flushed and deleted at the end of the same table
 * transaction, once the rewritten chains no longer jump to them. Each table commits
 * atomically, so no packet ever sees a half-written service.
 */
export function ruleDelta(input: DeltaInput): RuleDelta {
  const lines: string[] = [];
  const rewritten: string[] = [];
  const deleted: string[] = [];
  for (const table of TABLES) {
    const desired: ChainRules = input.desired[table];
    const written: ChainRules | undefined = input.written?.[table];
    const changed = [...desired.keys()].filter((c) => !written || !sameRules(written.get(c), desired.get(c) ?? []));
    const present = written ? [...written.keys()] : [...(input.existing?.[table] ?? [])];
    const gone = [...new Set(present)].filter((c) => !desired.has(c)).sort();
    if (changed.length === 0 && gone.length === 0) continue;
    lines.push(`*${table}`);
    for (const c of [...changed, ...gone]) lines.push(`:${c} - [0:0]`);
    for (const c of changed) lines.push(...(desired.get(c) ?? []));
    for (const c of gone) lines.push(`-X ${c}`);
    lines.push('COMMIT');
    rewritten.push(...changed.map((c) => `${table}/${c}`));
    deleted.push(...gone.map((c) => `${table}/${c}`));
  }
  return { restore: lines.length > 0 ? [...lines, ''].join('\n') : '', rewritten, deleted };
}
