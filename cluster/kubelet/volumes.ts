// Pod volumes as host directories under dataDir/pods/<uid>/volumes/<name>: emptyDir,
// configMap, secret, downwardAPI and projected (including service account tokens). The
// launcher bind-mounts each at its mountPath inside the container's mount namespace.
import fs from 'node:fs';
import path from 'node:path';
import type { ConfigMap, KubeClient, Pod, Secret, Volume } from '../../api/kube/index.js';
import { R } from '../../api/kube/index.js';
import { configMapData, ObjectSource, secretData } from './env.js';
import { resolveFieldPath, type PodAddresses } from './fieldref.js';
import { writeAtomically, type ProjectedFile } from './atomic-writer.js';

/**
 * How often configMap and secret volumes are re-read and, when their object changed,
 * swapped atomically (the kubelet's sync period plus its cache TTL are about a minute; we
 * poll more often because there is no watch per object here).
 */
export const VOLUME_REFRESH_MS = 5_000;

export class VolumeError extends Error {}

interface KeyToPath { key: string; path: string; mode?: number }
interface DownwardItem { path: string; fieldRef?: { fieldPath: string } }

/** A projected token to keep fresh: rewritten at 80% of its lifetime. */
export interface TokenProjection {
  volume: string;
  /** Absolute path of the user-visible file (a symlink through `..data`). */
  file: string;
  /** Its path inside the volume. */
  path: string;
  serviceAccount: string;
  audience?: string;
  expirationSeconds: number;
  /** The current token, part of the volume's payload. */
  token?: string;
}

interface TokenRequestStatus { status?: { token?: string; expirationTimestamp?: string } }

const DEFAULT_TOKEN_SECONDS = 3600;

/** Rejects item paths that would escape the volume directory. */
function safeJoin(dir: string, rel: string, where: string): string {
  if (path.isAbsolute(rel) || rel.split('/').includes('..')) throw new VolumeError(`${where}: path "${rel}" must be relative without ".."`);
  return path.join(dir, rel);
}

/** The files a configMap or secret volume holds (its items, or every key). */
function keyFiles(data: Record<string, string>, items: KeyToPath[] | undefined, mode: number, where: string, optional: boolean): ProjectedFile[] {
  const check = (rel: string): string => { safeJoin('/', rel, where); return rel; };
  if (!items || items.length === 0) return Object.entries(data).map(([k, v]) => ({ path: check(k), content: v, mode }));
  const out: ProjectedFile[] = [];
  for (const it of items) {
    const v = data[it.key];
    if (v === undefined) {
      if (optional) continue;
      throw new VolumeError(`${where}: key "${it.key}" not found`);
    }
    out.push({ path: check(it.path), content: v, mode: it.mode ?? mode });
  }
  return out;
}

export class PodVolumes {
  readonly root: string;
  readonly dirs = new Map<string, string>();
  readonly tokens: TokenProjection[] = [];
  private readonly timers = new Map<string, NodeJS.Timeout>(); // token file -> refresh timer
  private closed = false;
  /** Whether the pod has configMap or secret volumes to keep current. */
  private watchKeys = false;
  private refreshTimer?: NodeJS.Timeout;
  /** The pod's addresses, for downward API files written on refresh. */
  private addr?: PodAddresses;
  /** What each projected volume holds now: a token refresh rewrites it with the new token. */
  private readonly payloads = new Map<string, ProjectedFile[]>();

  constructor(private readonly client: KubeClient, private readonly pod: Pod, podDir: string) {
    this.root = path.join(podDir, 'volumes');
  }

  private where(v: Volume, field: string): string {
    return `pod ${this.pod.metadata.namespace}/${this.pod.metadata.name} volume ${v.name}: ${field}`;
  }

  /**
   * Materializes every volume; safe to call again. configMap, secret, downwardAPI and
   * projected volumes go through the AtomicWriter layout (atomic-writer.ts): a reader sees
   * one complete set of files or the next, never a mix or a half-written file.
   */
  async prepare(addr: PodAddresses): Promise<void> {
    this.addr = addr;
    const objects = new ObjectSource(this.client, this.pod.metadata.namespace ?? 'default');
    for (const v of this.pod.spec.volumes ?? []) {
      const dir = path.join(this.root, v.name);
      fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
      // World-writable like a fresh emptyDir in Kubernetes, so non-root containers can write.
      if (v.emptyDir) fs.chmodSync(dir, 0o777);
      else fs.chmodSync(dir, 0o755);
      this.dirs.set(v.name, dir);
      if (v.configMap) {
        const cm = await objects.configMap(v.configMap.name);
        if (!cm) {
          if (!v.configMap.optional) throw new VolumeError(`${this.where(v, 'configMap')}: configmap "${v.configMap.name}" not found`);
          continue;
        }
        writeAtomically(dir, keyFiles(configMapData(cm), v.configMap.items, modeOf(v.configMap), this.where(v, 'configMap.items'), !!v.configMap.optional));
        this.watchKeys = true;
      } else if (v.secret) {
        const s = await objects.secret(v.secret.secretName);
        if (!s) {
          if (!v.secret.optional) throw new VolumeError(`${this.where(v, 'secret')}: secret "${v.secret.secretName}" not found`);
          continue;
        }
        writeAtomically(dir, keyFiles(secretData(s), v.secret.items, modeOf(v.secret), this.where(v, 'secret.items'), !!v.secret.optional));
        this.watchKeys = true;
      } else if (v.downwardAPI) {
        writeAtomically(dir, this.downwardFiles(v.downwardAPI.items, addr, modeOf(v.downwardAPI), this.where(v, 'downwardAPI.items')));
      } else if (v.projected) {
        const files = await this.projectedFiles(v, objects, addr, true);
        writeAtomically(dir, files);
        this.payloads.set(v.name, files);
        if (v.projected.sources.some((src) => src.configMap || src.secret)) this.watchKeys = true;
      }
      // emptyDir and unknown kinds (hostPath is not supported) are just the directory.
    }
  }

  /**
   * Keeps configMap and secret volumes current: every VOLUME_REFRESH_MS re-reads their
   * objects and swaps changed contents in atomically. A deleted object keeps the last files
   * (as the kubelet does).
   */
  startRefresh(intervalMs = VOLUME_REFRESH_MS): void {
    if (!this.watchKeys || this.refreshTimer || this.closed) return;
    const tick = async (): Promise<void> => {
      const objects = new ObjectSource(this.client, this.pod.metadata.namespace ?? 'default');
      for (const v of this.pod.spec.volumes ?? []) {
        const dir = this.dirs.get(v.name);
        if (!dir || this.closed) continue;
        try {
          if (v.configMap) {
            const cm = await objects.configMap(v.configMap.name);
            if (cm) writeAtomically(dir, keyFiles(configMapData(cm), v.configMap.items, modeOf(v.configMap), this.where(v, 'configMap.items'), !!v.configMap.optional));
          } else if (v.secret) {
            const s = await objects.secret(v.secret.secretName);
            if (s) writeAtomically(dir, keyFiles(secretData(s), v.secret.items, modeOf(v.secret), this.where(v, 'secret.items'), !!v.secret.optional));
          } else if (v.projected && this.addr && v.projected.sources.some((src) => src.configMap || src.secret)) {
            const files = await this.projectedFiles(v, objects, this.addr, false);
            writeAtomically(dir, files);
            this.payloads.set(v.name, files);
          }
        } catch (e) {
          console.error(`kubelet: refreshing ${this.where(v, 'contents')}: ${(e as Error).message}`);
        }
      }
    };
    const loop = (): void => {
      this.refreshTimer = setTimeout(() => { void tick().finally(() => { if (!this.closed) loop(); }); }, intervalMs);
      this.refreshTimer.unref();
    };
    loop();
  }

  private downwardFiles(items: DownwardItem[], addr: PodAddresses, mode: number, where: string): ProjectedFile[] {
    const out: ProjectedFile[] = [];
    for (const it of items) {
      if (!it.fieldRef) continue;
      let value: string;
      try { value = resolveFieldPath(this.pod, it.fieldRef.fieldPath, addr); } catch (e) {
        throw new VolumeError(`${where}: ${(e as Error).message}`);
      }
      safeJoin('/', it.path, where);
      out.push({ path: it.path, content: value, mode: (it as { mode?: number }).mode ?? mode });
    }
    return out;
  }

  /**
   * Every file of a projected volume, from all its sources (a missing optional object
   * contributes nothing). Tokens are requested the first time (`initial`), later taken from
   * the refresher's cache. A missing configMap or secret on refresh keeps the last files.
   */
  private async projectedFiles(v: Volume, objects: ObjectSource, addr: PodAddresses, initial: boolean): Promise<ProjectedFile[]> {
    const projected = v.projected;
    if (!projected) return [];
    const dir = path.join(this.root, v.name);
    const mode = projected.defaultMode ?? 0o644;
    const files: ProjectedFile[] = [];
    for (const [i, src] of projected.sources.entries()) {
      const where = this.where(v, `projected.sources[${i}]`);
      if (src.configMap) {
        const cm = await objects.configMap(src.configMap.name);
        const optional = !!(src.configMap as { optional?: boolean }).optional;
        if (!cm) {
          if (optional) continue;
          if (!initial) return this.payloads.get(v.name) ?? [];
          throw new VolumeError(`${where}.configMap: configmap "${src.configMap.name}" not found`);
        }
        files.push(...keyFiles(configMapData(cm as ConfigMap), src.configMap.items, mode, `${where}.configMap.items`, optional));
      } else if (src.secret) {
        const s = await objects.secret(src.secret.name);
        const optional = !!(src.secret as { optional?: boolean }).optional;
        if (!s) {
          if (optional) continue;
          if (!initial) return this.payloads.get(v.name) ?? [];
          throw new VolumeError(`${where}.secret: secret "${src.secret.name}" not found`);
        }
        files.push(...keyFiles(secretData(s as Secret), src.secret.items, mode, `${where}.secret.items`, optional));
      } else if (src.downwardAPI) {
        files.push(...this.downwardFiles(src.downwardAPI.items, addr, mode, `${where}.downwardAPI.items`));
      } else if (src.serviceAccountToken) {
        const t = src.serviceAccountToken;
        const file = safeJoin(dir, t.path, `${where}.serviceAccountToken.path`);
        let tp = this.tokens.find((x) => x.file === file);
        if (!tp) {
          tp = {
            volume: v.name, file, path: t.path,
            serviceAccount: this.pod.spec.serviceAccountName ?? 'default',
            audience: t.audience,
            expirationSeconds: t.expirationSeconds ?? DEFAULT_TOKEN_SECONDS,
          };
          this.tokens.push(tp);
        }
        if (tp.token === undefined) await this.refreshToken(tp, mode, `${where}.serviceAccountToken`);
        files.push({ path: tp.path, content: tp.token ?? '', mode });
      }
    }
    return files;
  }

  /** Requests a bound token (TokenRequest) and schedules its refresh at 80% of its life. */
  private async refreshToken(tp: TokenProjection, mode: number, where: string): Promise<void> {
    const body = {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: {
        audiences: tp.audience ? [tp.audience] : [],
        expirationSeconds: tp.expirationSeconds,
        boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: this.pod.metadata.name, uid: this.pod.metadata.uid },
      },
    };
    let res: TokenRequestStatus;
    try {
      res = await this.client.createSubresource<TokenRequestStatus>(R.serviceAccounts, tp.serviceAccount, this.pod.metadata.namespace, 'token', body);
    } catch (e) {
      throw new VolumeError(`${where}: token for serviceaccount "${tp.serviceAccount}": ${(e as Error).message}`);
    }
    const token = res.status?.token;
    if (!token) throw new VolumeError(`${where}: TokenRequest for serviceaccount "${tp.serviceAccount}" returned no status.token`);
    const first = tp.token === undefined;
    tp.token = token;
    // A refresh rewrites the whole volume with the new token (the first one is written with the volume).
    const payload = this.payloads.get(tp.volume);
    if (!first && payload && !this.closed) {
      const files = payload.map((f) => (f.path === tp.path ? { ...f, content: token } : f));
      writeAtomically(path.join(this.root, tp.volume), files);
      this.payloads.set(tp.volume, files);
    }
    const exp = Date.parse(res.status?.expirationTimestamp ?? '') || Date.now() + tp.expirationSeconds * 1000;
    this.schedule(tp, mode, where, Math.max(1000, (exp - Date.now()) * 0.8));
  }

  private schedule(tp: TokenProjection, mode: number, where: string, ms: number): void {
    if (this.closed) return;
    clearTimeout(this.timers.get(tp.file));
    const t = setTimeout(() => {
      this.timers.delete(tp.file);
      this.refreshToken(tp, mode, where).catch((e: unknown) => {
        console.error(`kubelet: ${(e as Error).message}; retrying in 10s`);
        this.schedule(tp, mode, where, 10_000);
      });
    }, Math.min(ms, 2 ** 31 - 1));
    t.unref();
    this.timers.set(tp.file, t);
  }

  /** Stops token refreshes (the pod is going away). */
  close(): void {
    this.closed = true;
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}

function modeOf(v: object): number {
  const m = (v as { defaultMode?: unknown }).defaultMode;
  return typeof m === 'number' ? m : 0o644;
}
