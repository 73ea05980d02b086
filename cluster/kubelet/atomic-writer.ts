// The kubelet's AtomicWriter for configMap and secret volumes: the files live in a
// timestamped directory `..<ts>`, `..data` is a symlink to it and each top-level entry is a
// symlink `<name> -> ..data/<name>`. An update writes a new timestamped directory and renames
// a new symlink over `..data`, so a reader sees the old set of files or the new one, never
// a mix; then stale entries and the old directory go.
import fs from 'node:fs';
import path from 'node:path';

export interface ProjectedFile { path: string; content: string | Buffer; mode: number }

const DATA = '..data';

/** What the directory currently holds (path -> content), to skip writes that change nothing. */
function fingerprint(files: ProjectedFile[]): string {
  return JSON.stringify(files.map((f) => [f.path, f.mode, Buffer.from(f.content).toString('base64')]).sort());
}

function currentFingerprint(dir: string): string | undefined {
  try { return fs.readFileSync(path.join(dir, DATA, '..fingerprint'), 'utf8'); } catch { return undefined; }
}

/** Makes `dir` hold exactly `files` (relative paths without ".."); returns whether anything changed. */
export function writeAtomically(dir: string, files: ProjectedFile[]): boolean {
  const print = fingerprint(files);
  if (currentFingerprint(dir) === print) return false;
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const stamp = `..${new Date().toISOString().replace(/[-:.]/g, '_')}.${process.pid}${Math.floor(Math.random() * 1e6)}`;
  const next = path.join(dir, stamp);
  fs.mkdirSync(next, { mode: 0o755 });
  for (const f of files) {
    const file = path.join(next, f.path);
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
    fs.writeFileSync(file, f.content, { mode: f.mode });
    fs.chmodSync(file, f.mode);
  }
  fs.writeFileSync(path.join(next, '..fingerprint'), print, { mode: 0o600 });
  let previous: string | undefined;
  try { previous = fs.readlinkSync(path.join(dir, DATA)); } catch { previous = undefined; }
  const tmpLink = path.join(dir, '..data_tmp');
  fs.rmSync(tmpLink, { force: true });
  fs.symlinkSync(stamp, tmpLink);
  fs.renameSync(tmpLink, path.join(dir, DATA)); // the atomic switch
  const top = new Set(files.map((f) => f.path.split('/')[0]));
  for (const name of top) {
    const link = path.join(dir, name);
    let ok = false;
    try { ok = fs.readlinkSync(link) === path.join(DATA, name); } catch { ok = false; }
    if (!ok) {
      fs.rmSync(link, { recursive: true, force: true });
      fs.symlinkSync(path.join(DATA, name), link);
    }
  }
  for (const entry of fs.readdirSync(dir)) {
    if (entry.startsWith('..') || top.has(entry)) continue;
    fs.rmSync(path.join(dir, entry), { recursive: true, force: true }); // a key that was removed
  }
  if (previous && previous !== stamp && previous.startsWith('..')) fs.rmSync(path.join(dir, previous), { recursive: true, force: true });
  return true;
}
