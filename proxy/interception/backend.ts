// Which iptables backend the host uses, the kubernetes-sigs iptables-wrapper way: rules
// written with the other backend would be invisible to the kernel path the host's own rules
// (and its kubelet) use. An override wins; else the kubelet's canary chains decide; else the
// backend holding more rules; nft when both are empty (today's default).
import { spawnSync } from 'node:child_process';

export type IptablesBackend = 'legacy' | 'nft';

export const BACKEND_ENV = 'IPTABLES_BACKEND';

export interface BackendChoice {
  backend: IptablesBackend;
  /** Why, for the log. */
  reason: string;
}

export interface SaveOutputs {
  legacy: string;
  nft: string;
  legacyMangle?: string;
  nftMangle?: string;
}

const KUBELET_CANARY = /^:(KUBE-IPTABLES-HINT|KUBE-KUBELET-CANARY) /m;

function ruleCount(save: string): number {
  return save.split('\n').filter((l) => l.startsWith('-')).length;
}

export function parseBackend(where: string, value: string): IptablesBackend {
  if (value === 'legacy' || value === 'nft') return value;
  throw new Error(`istio-iptables: ${where}: "${value}" is not an iptables backend (legacy or nft)`);
}

/** The choice from what iptables-legacy-save and iptables-nft-save print (pure, for tests). */
export function chooseBackend(out: SaveOutputs, override?: string): BackendChoice {
  if (override) return { backend: parseBackend(BACKEND_ENV, override), reason: `${BACKEND_ENV}=${override}` };
  if (KUBELET_CANARY.test(out.nftMangle ?? '')) return { backend: 'nft', reason: 'the kubelet canary chain is in nft' };
  if (KUBELET_CANARY.test(out.legacyMangle ?? '')) return { backend: 'legacy', reason: 'the kubelet canary chain is in legacy' };
  const legacy = ruleCount(out.legacy);
  const nft = ruleCount(out.nft);
  if (legacy > nft) return { backend: 'legacy', reason: `${legacy} legacy rules vs ${nft} nft rules` };
  return { backend: 'nft', reason: `${nft} nft rules vs ${legacy} legacy rules` };
}

function save(cmd: string, table?: string): string {
  const r = spawnSync(cmd, table ? ['-t', table] : [], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout ?? '' : '';
}

function exists(cmd: string): boolean {
  return spawnSync(cmd, ['--version'], { encoding: 'utf8' }).status === 0;
}

/** Detects the backend in the current network namespace. */
export function detectBackend(override = process.env[BACKEND_ENV]): BackendChoice {
  if (!override && !exists('iptables-legacy-save')) return { backend: 'nft', reason: 'iptables-legacy-save is not installed' };
  if (!override && !exists('iptables-nft-save')) return { backend: 'legacy', reason: 'iptables-nft-save is not installed' };
  if (override) return chooseBackend({ legacy: '', nft: '' }, override);
  return chooseBackend({
    legacy: save('iptables-legacy-save'), nft: save('iptables-nft-save'),
    legacyMangle: save('iptables-legacy-save', 'mangle'), nftMangle: save('iptables-nft-save', 'mangle'),
  });
}

/** The binaries of a backend, falling back to the plain names when the suffixed ones are absent. */
export function backendCommands(b: IptablesBackend): { iptables: string; save: string; restore: string } {
  const suffixed = { iptables: `iptables-${b}`, save: `iptables-${b}-save`, restore: `iptables-${b}-restore` };
  return exists(suffixed.save) ? suffixed : { iptables: 'iptables', save: 'iptables-save', restore: 'iptables-restore' };
}
