import { mustRun, runCommand } from './exec.js';

export type IptablesTable = 'filter' | 'nat';

/** The table as iptables-save prints it; '' when the table does not exist yet (nf_tables creates tables lazily). */
export async function saveTable(table: IptablesTable): Promise<string> {
  const r = await runCommand('iptables-save', ['-t', table]);
  return r.code === 0 ? r.stdout : '';
}

/** Chains in `saved` whose names start with `chainPrefix` (e.g. "TRELLIS-"). */
export function chainsWithPrefix(saved: string, chainPrefix: string): string[] {
  const out: string[] = [];
  for (const line of saved.split('\n')) {
    if (line.startsWith(':') && line.slice(1).startsWith(chainPrefix)) out.push(line.slice(1).split(' ')[0]);
  }
  return out;
}

/** Rules (as iptables-save `-A ...` lines) outside the prefix's chains that jump or goto into them. */
export function jumpsIntoPrefix(saved: string, chainPrefix: string): string[] {
  const out: string[] = [];
  for (const line of saved.split('\n')) {
    if (!line.startsWith('-A ')) continue;
    const chain = line.split(' ')[1];
    if (chain.startsWith(chainPrefix)) continue;
    const target = / -[jg] (\S+)/.exec(line)?.[1];
    if (target?.startsWith(chainPrefix)) out.push(line);
  }
  return out;
}

/**
 * Applies a restore file without flushing other chains. nf_tables may report a transient
 * conflict when another process commits at the same moment, so retry a few times.
 */
export async function restoreNoFlush(input: string, attempts = 5): Promise<void> {
  let last = '';
  for (let attempt = 0; attempt < attempts; attempt++) {
    const r = await runCommand('iptables-restore', ['-w', '5', '--noflush'], input);
    if (r.code === 0) return;
    last = r.stderr.trim() || r.stdout.trim();
    if (attempt + 1 < attempts) await new Promise((res) => setTimeout(res, 50 * (attempt + 1)));
  }
  throw new Error(`iptables-restore --noflush failed: ${last}\n--- input ---\n${input}`);
}

/** Ensures `-A builtin <rule>` exists; inserts it first in the chain when missing. */
export async function ensureRule(table: IptablesTable, chain: string, rule: readonly string[], position: 'first' | 'last' = 'first'): Promise<void> {
  const check = await runCommand('iptables', ['-w', '5', '-t', table, '-C', chain, ...rule]);
  if (check.code === 0) return;
  const add = position === 'first' ? ['-I', chain, '1'] : ['-A', chain];
  await mustRun('iptables', ['-w', '5', '-t', table, ...add, ...rule]);
}

/** Ensures a user chain exists (no-op when it does). */
export async function ensureChain(table: IptablesTable, chain: string): Promise<void> {
  const r = await runCommand('iptables', ['-w', '5', '-t', table, '-N', chain]);
  if (r.code !== 0 && !/exists/i.test(r.stderr)) throw new Error(`iptables -t ${table} -N ${chain}: ${r.stderr.trim()}`);
}

/**
 * Removes every chain of the prefix in `table`, and every rule elsewhere that jumps into
 * one, in one atomic restore. Works from the live ruleset alone, so it also cleans up
 * after a crashed run.
 */
export async function purgeTablePrefix(table: IptablesTable, chainPrefix: string): Promise<void> {
  const saved = await saveTable(table);
  const chains = chainsWithPrefix(saved, chainPrefix);
  const jumps = jumpsIntoPrefix(saved, chainPrefix);
  if (chains.length === 0 && jumps.length === 0) return;
  const lines = [`*${table}`];
  for (const c of chains) lines.push(`:${c} - [0:0]`); // declaring a chain flushes it
  for (const j of jumps) lines.push(`-D ${j.slice(3)}`);
  for (const c of chains) lines.push(`-X ${c}`);
  lines.push('COMMIT', '');
  await restoreNoFlush(lines.join('\n'));
}
