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
export interface TokenProjection { volume: string; file: string; serviceAccount: string; audience?: string; expirationSeconds: number }

interface TokenRequestStatus { status?: { token?: string; expirationTimestamp?: string } }

const DEFAULT_TOKEN_SECONDS = 3600;

/** Writes a file atomically, so a reader never sees half a token or config. */
function writeAtomic(file: string, content: string | Buffer, mode = 0o644): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
  fs.writeFileSync(tmp, content, { mode });
  fs.chmodSync(tmp, mode);
  fs.renameSync(tmp, file);
}

/** Rejects item paths that would escape the volume directory. */
function safeJoin(dir: string, rel: string, where: string): string {
  if (path.isAbsolute(rel) || rel.split('/').includes('..')) throw new VolumeError(`${where}: path "${rel}" must be relative without ".."`);
  return path.join(dir, rel);
}

function projectKeys(dir: string, data: Record<string, string>, items: KeyToPath[] | undefined, mode: number, where: string, optional: boolean): void {
  if (!items || items.length === 0) {
    for (const [k, v] of Object.entries(data)) writeAtomic(safeJoin(dir, k, where), v, mode);
    return;
  }
  for (const it of items) {
    const v = data[it.key];
    if (v === undefined) {
      if (optional) continue;
      throw new VolumeError(`${where}: key "${it.key}" not found`);
    }
    writeAtomic(safeJoin(dir, it.path, where), v, it.mode ?? mode);
  }
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

  constructor(private readonly client: KubeClient, private readonly pod: Pod, podDir: string) {
    this.root = path.join(podDir, 'volumes');
  }

  private where(v: Volume, field: string): string {
    return `pod ${this.pod.metadata.namespace}/${this.pod.metadata.name} volume ${v.name}: ${field}`;
  }

  /** Materializes every volume; safe to call again (files are rewritten in place). */
  async prepare(addr: PodAddresses): Promise<void> {
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
        this.writeDownward(dir, v.downwardAPI.items, addr, modeOf(v.downwardAPI), this.where(v, 'downwardAPI.items'));
      } else if (v.projected) {
        const mode = v.projected.defaultMode ?? 0o644;
        for (const [i, src] of v.projected.sources.entries()) {
          const where = this.where(v, `projected.sources[${i}]`);
          if (src.configMap) {
            const cm = await objects.configMap(src.configMap.name);
            const optional = !!(src.configMap as { optional?: boolean }).optional;
            if (!cm) { if (optional) continue; throw new VolumeError(`${where}.configMap: configmap "${src.configMap.name}" not found`); }
            projectKeys(dir, configMapData(cm as ConfigMap), src.configMap.items, mode, `${where}.configMap.items`, optional);
          } else if (src.secret) {
            const s = await objects.secret(src.secret.name);
            const optional = !!(src.secret as { optional?: boolean }).optional;
            if (!s) { if (optional) continue; throw new VolumeError(`${where}.secret: secret "${src.secret.name}" not found`); }
            projectKeys(dir, secretData(s as Secret), src.secret.items, mode, `${where}.secret.items`, optional);
          } else if (src.downwardAPI) {
            this.writeDownward(dir, src.downwardAPI.items, addr, mode, `${where}.downwardAPI.items`);
          } else if (src.serviceAccountToken) {
            const t = src.serviceAccountToken;
            const tp: TokenProjection = {
              volume: v.name,
              file: safeJoin(dir, t.path, `${where}.serviceAccountToken.path`),
              serviceAccount: this.pod.spec.serviceAccountName ?? 'default',
              audience: t.audience,
              expirationSeconds: t.expirationSeconds ?? DEFAULT_TOKEN_SECONDS,
            };
            if (!this.tokens.some((x) => x.file === tp.file)) this.tokens.push(tp);
            await this.refreshToken(tp, mode, `${where}.serviceAccountToken`);
          }
        }
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

  private writeDownward(dir: string, items: DownwardItem[], addr: PodAddresses, mode: number, where: string): void {
    for (const it of items) {
      if (!it.fieldRef) continue;
      let value: string;
      try { value = resolveFieldPath(this.pod, it.fieldRef.fieldPath, addr); } catch (e) {
        throw new VolumeError(`${where}: ${(e as Error).message}`);
      }
      writeAtomic(safeJoin(dir, it.path, where), value, (it as { mode?: number }).mode ?? mode);
    }
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
    writeAtomic(tp.file, token, mode);
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
