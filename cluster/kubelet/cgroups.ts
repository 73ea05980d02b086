// Memory limits with cgroups: one group per pod, one child per container, the container's
// resources.limits.memory as its limit, the kernel's OOM killer enforcing it. Layout:
//   <base>/<prefix>.slice/pod<uid>/<container>
// cgroup v2 (memory.max, memory.events) when the unified hierarchy has the memory
// controller: <base> is /sys/fs/cgroup, as the brief of the cgroup v2 "no internal
// processes" rule requires (a group that holds processes cannot delegate controllers).
// Otherwise cgroup v1 (memory.limit_in_bytes, memory.oom_control) when a memory hierarchy is
// mounted: <base> is the kubelet's own memory group, so the pods stay inside whatever
// accounting and limits the host put on the kubelet (like the kubelet's --cgroup-root).
// Where neither works (no controller, read-only cgroupfs), limits are not enforced and
// `cgroupSupport()` says why.
import fs from 'node:fs';
import path from 'node:path';

export interface MemoryCgroupBackend {
  version: 1 | 2;
  /** `<base>/<prefix>.slice` */
  slice: string;
}

const V2_ROOT = '/sys/fs/cgroup';
const V1_ROOT = '/sys/fs/cgroup/memory';

/** A Kubernetes quantity ("64Mi", "100M", "1Gi", "129e6", "1024") in bytes. */
export function parseMemoryQuantity(q: string | number, where: string): number {
  if (typeof q === 'number') return Math.ceil(q);
  const m = /^([0-9]+(?:\.[0-9]+)?)(?:(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)|[eE]([0-9]+))?$/.exec(q.trim());
  if (!m) throw new Error(`${where}: "${q}" is not a quantity`);
  const scale: Record<string, number> = {
    Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
    k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, m: 1e-3,
  };
  const factor = m[2] ? scale[m[2]] : m[3] ? 10 ** Number(m[3]) : 1;
  return Math.ceil(Number(m[1]) * factor);
}

function read(file: string): string | undefined {
  try { return fs.readFileSync(file, 'utf8'); } catch { return undefined; }
}

/** `key value` lines (memory.events, memory.oom_control). */
function counter(file: string, key: string): number {
  const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(read(file) ?? '');
  return m ? Number(m[1]) : 0;
}

function ownV1Group(): string | undefined {
  for (const line of (read('/proc/self/cgroup') ?? '').split('\n')) {
    const [, controllers, p] = line.split(':');
    if (controllers?.split(',').includes('memory')) return p;
  }
  return undefined;
}

/** Where this machine lets the kubelet enforce memory limits, or why not. */
export function cgroupSupport(prefix: string): { backend?: MemoryCgroupBackend; reason?: string } {
  const reasons: string[] = [];
  const v2 = read(path.join(V2_ROOT, 'cgroup.controllers'));
  if (v2 !== undefined) {
    if (v2.split(/\s+/).includes('memory')) {
      const backend: MemoryCgroupBackend = { version: 2, slice: path.join(V2_ROOT, `${prefix}.slice`) };
      const err = probe(backend);
      if (!err) return { backend };
      reasons.push(`cgroup v2: ${err}`);
    } else {
      reasons.push(`cgroup v2: ${V2_ROOT}/cgroup.controllers has no memory controller`);
    }
  }
  if (fs.existsSync(path.join(V1_ROOT, 'memory.limit_in_bytes'))) {
    const own = ownV1Group();
    if (own !== undefined) {
      const backend: MemoryCgroupBackend = { version: 1, slice: path.join(V1_ROOT, own, `${prefix}.slice`) };
      const err = probe(backend);
      if (!err) return { backend };
      reasons.push(`cgroup v1: ${err}`);
    } else {
      reasons.push('cgroup v1: /proc/self/cgroup names no memory group');
    }
  } else if (v2 === undefined) {
    reasons.push('no cgroup v2 hierarchy at /sys/fs/cgroup and no v1 memory hierarchy');
  }
  return { reason: reasons.join('; ') };
}

/** Can we make the slice (and a child of it) with a memory limit? Leaves the slice in place. */
function probe(b: MemoryCgroupBackend): string | undefined {
  try {
    if (b.version === 2) enableMemory(path.dirname(b.slice));
    fs.mkdirSync(b.slice, { recursive: true });
    if (b.version === 2) enableMemory(b.slice);
    const test = path.join(b.slice, 'probe');
    fs.mkdirSync(test, { recursive: true });
    const ok = fs.existsSync(path.join(test, b.version === 2 ? 'memory.max' : 'memory.limit_in_bytes'));
    fs.rmdirSync(test);
    return ok ? undefined : `${test} has no memory limit file`;
  } catch (e) {
    return (e as Error).message;
  }
}

function enableMemory(dir: string): void {
  const control = path.join(dir, 'cgroup.subtree_control');
  if (!(read(control) ?? '').split(/\s+/).includes('memory')) fs.writeFileSync(control, '+memory');
}

/** The cgroups of one pod. */
export class PodCgroup {
  readonly dir: string;
  private readonly oomBaseline = new Map<string, number>();

  constructor(private readonly b: MemoryCgroupBackend, podUID: string) {
    this.dir = path.join(b.slice, `pod${podUID.replace(/[^A-Za-z0-9-]/g, '_')}`);
  }

  /**
   * Creates (or reuses, across restarts) the container's group with its limit; returns the
   * cgroup.procs file the launcher writes its PID into before exec'ing the program.
   */
  prepareContainer(container: string, limitBytes: number | undefined): string {
    if (this.b.version === 2) { fs.mkdirSync(this.dir, { recursive: true }); enableMemory(this.dir); }
    const dir = path.join(this.dir, container);
    fs.mkdirSync(dir, { recursive: true });
    if (this.b.version === 2) {
      fs.writeFileSync(path.join(dir, 'memory.max'), limitBytes ? String(limitBytes) : 'max');
      // Without swap the limit is the limit (the kubelet's default NoSwap behaviour).
      if (fs.existsSync(path.join(dir, 'memory.swap.max'))) fs.writeFileSync(path.join(dir, 'memory.swap.max'), '0');
    } else {
      fs.writeFileSync(path.join(dir, 'memory.limit_in_bytes'), limitBytes ? String(limitBytes) : '-1');
      const memsw = path.join(dir, 'memory.memsw.limit_in_bytes');
      if (limitBytes && fs.existsSync(memsw)) { try { fs.writeFileSync(memsw, String(limitBytes)); } catch { /* swap accounting off */ } }
    }
    this.oomBaseline.set(container, this.oomKills(container));
    return path.join(dir, 'cgroup.procs');
  }

  private oomKills(container: string): number {
    const dir = path.join(this.dir, container);
    return this.b.version === 2 ? counter(path.join(dir, 'memory.events'), 'oom_kill') : counter(path.join(dir, 'memory.oom_control'), 'oom_kill');
  }

  /** Did the OOM killer kill a process of this container since its last start? */
  oomKilled(container: string): boolean {
    return this.oomKills(container) > (this.oomBaseline.get(container) ?? 0);
  }

  /** Kills what is left inside and removes the groups (after the containers were stopped). */
  async remove(): Promise<void> {
    await removeTree(this.dir);
  }
}

/** Removes a cgroup subtree bottom-up, SIGKILLing processes left in it (our pods' only). */
export async function removeTree(dir: string): Promise<void> {
  if (!fs.existsSync(dir)) return;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) await removeTree(path.join(dir, e.name));
  }
  for (let attempt = 0; ; attempt++) {
    for (const pid of (read(path.join(dir, 'cgroup.procs')) ?? '').split('\n').filter(Boolean).map(Number)) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
    }
    try {
      fs.rmdirSync(dir);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      // EBUSY while killed processes are still being reaped.
      if (attempt >= 50) throw new Error(`cgroup ${dir}: cannot remove: ${(e as Error).message}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** Removes the whole `<prefix>.slice` (kubelet start after a crash, kubelet stop). */
export async function removeSlice(prefix: string): Promise<void> {
  const { backend } = cgroupLocation(prefix);
  if (backend) await removeTree(backend.slice);
}

/** The slice location without creating anything (teardown must not create groups). */
function cgroupLocation(prefix: string): { backend?: MemoryCgroupBackend } {
  const v2 = read(path.join(V2_ROOT, 'cgroup.controllers'));
  const v2Slice = path.join(V2_ROOT, `${prefix}.slice`);
  if (v2 !== undefined && fs.existsSync(v2Slice)) return { backend: { version: 2, slice: v2Slice } };
  const own = ownV1Group();
  if (own !== undefined && fs.existsSync(path.join(V1_ROOT, own, `${prefix}.slice`))) {
    return { backend: { version: 1, slice: path.join(V1_ROOT, own, `${prefix}.slice`) } };
  }
  return {};
}
