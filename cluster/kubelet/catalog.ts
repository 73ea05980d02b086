// The image catalog: there is no container engine, so an image reference maps to a local
// program. Files are YAML maps `image -> { command: [...], args: [...] }`; `${TRELLIS_HOME}`
// expands to the repository root. Files are re-read on each lookup so edits apply to the
// next container start.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

export interface CatalogEntry { command: string[]; args: string[] }

/** The repository root: $TRELLIS_HOME, else three levels above dist/cluster/kubelet/. */
export function trellisHome(): string {
  if (process.env.TRELLIS_HOME) return process.env.TRELLIS_HOME;
  const here = path.dirname(fileURLToPath(import.meta.url));
  // Compiled: <root>/dist/cluster/kubelet; from source: <root>/cluster/kubelet.
  const up = path.basename(path.resolve(here, '../..')) === 'dist' ? '../../..' : '../..';
  return path.resolve(here, up);
}

function expand(s: string, home: string): string {
  return s.replace(/\$\{TRELLIS_HOME\}/g, home);
}

function toArgv(v: unknown, field: string): string[] {
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') return v.split(/\s+/).filter(Boolean);
  if (Array.isArray(v) && v.every((x) => typeof x === 'string' || typeof x === 'number')) return v.map(String);
  throw new Error(`${field}: must be a list of strings`);
}

export class ImageNotInCatalogError extends Error {
  readonly reason = 'ImageNotInCatalog';
}

export function lookupImage(image: string, catalogs: string[]): CatalogEntry {
  const home = trellisHome();
  const problems: string[] = [];
  for (const file of catalogs) {
    let doc: unknown;
    try { doc = YAML.parse(fs.readFileSync(file, 'utf8')); } catch (e) {
      problems.push(`${file}: ${(e as Error).message}`);
      continue;
    }
    if (!doc || typeof doc !== 'object') continue;
    const entry = (doc as Record<string, unknown>)[image];
    if (!entry || typeof entry !== 'object') continue;
    const e = entry as { command?: unknown; args?: unknown };
    return {
      command: toArgv(e.command, `${file}: ${image}.command`).map((s) => expand(s, home)),
      args: toArgv(e.args, `${file}: ${image}.args`).map((s) => expand(s, home)),
    };
  }
  const where = catalogs.length ? catalogs.join(', ') : '(no catalog files configured)';
  const extra = problems.length ? `; unreadable: ${problems.join('; ')}` : '';
  throw new ImageNotInCatalogError(`image "${image}" is not in the image catalog (${where})${extra}`);
}
