// A small Kubernetes REST client: CRUD, patch, subresources and streaming watch over
// HTTPS with a bearer token. Used by the cluster's own controllers and kubelet, by
// pilot and the injector, and by the CLI; it speaks only the public API.
import fs from 'node:fs';
import { Agent, request } from 'undici';
import { ApiError } from './errors.js';
import { resolveClusterAccess, type ClusterAccess } from './kubeconfig.js';
import { apiVersionOf, collectionPath, objectPath, type ResourceRef } from './resources.js';
import type { KubeList, KubeObject, Status, WatchEvent } from './types.js';

export type PatchType = 'json' | 'merge' | 'strategic' | 'apply';

const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  json: 'application/json-patch+json',
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  apply: 'application/apply-patch+yaml',
};

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
}

export interface WatchOptions extends ListOptions {
  allowWatchBookmarks?: boolean;
  timeoutSeconds?: number;
}

export interface Watch { stop(): void; done: Promise<void> }

export class KubeClient {
  private readonly agent: Agent;

  constructor(readonly access: ClusterAccess, readonly userAgent = 'trellis') {
    this.agent = new Agent({
      connect: { ca: access.caPem, rejectUnauthorized: !access.insecureSkipTLSVerify },
      keepAliveTimeout: 30_000,
      // Watches are long-lived; per-request timeouts are set where needed.
      bodyTimeout: 0,
      headersTimeout: 30_000,
    });
  }

  static fromKubeconfig(file?: string, userAgent?: string): KubeClient {
    return new KubeClient(resolveClusterAccess(file), userAgent);
  }

  private token(): string | undefined {
    if (this.access.tokenFile) return fs.readFileSync(this.access.tokenFile, 'utf8').trim();
    return this.access.token;
  }

  /** A raw request; returns the parsed JSON body or throws ApiError on a non-2xx answer. */
  async raw<T>(method: string, path: string, body?: unknown, contentType = 'application/json', query?: Record<string, string | number | boolean | undefined>): Promise<T> {
    const url = this.access.server + path + queryString(query);
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': this.userAgent };
    const token = this.token();
    if (token) headers.authorization = `Bearer ${token}`;
    let payload: string | undefined;
    if (body !== undefined) {
      headers['content-type'] = contentType;
      payload = typeof body === 'string' ? body : JSON.stringify(body);
    }
    const res = await request(url, { method: method as 'GET', headers, body: payload, dispatcher: this.agent, bodyTimeout: 60_000 });
    const text = await res.body.text();
    let parsed: unknown;
    try { parsed = text ? JSON.parse(text) : undefined; } catch { parsed = undefined; }
    if (res.statusCode < 200 || res.statusCode > 299) {
      const status = isStatus(parsed) ? parsed : { kind: 'Status', status: 'Failure', code: res.statusCode, message: text.slice(0, 500) } as Status;
      throw new ApiError(res.statusCode, status, `${method} ${path}`);
    }
    return parsed as T;
  }

  get<T extends KubeObject>(r: ResourceRef, name: string, namespace?: string): Promise<T> {
    return this.raw<T>('GET', objectPath(r, name, namespace));
  }

  /** Like get, but undefined instead of a NotFound error. */
  async find<T extends KubeObject>(r: ResourceRef, name: string, namespace?: string): Promise<T | undefined> {
    try { return await this.get<T>(r, name, namespace); } catch (e) {
      if (e instanceof ApiError && e.code === 404) return undefined;
      throw e;
    }
  }

  list<T extends KubeObject>(r: ResourceRef, opts: ListOptions = {}): Promise<KubeList<T>> {
    return this.raw<KubeList<T>>('GET', collectionPath(r, opts.namespace), undefined, undefined, {
      labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector, limit: opts.limit,
      continue: opts.continue, resourceVersion: opts.resourceVersion,
    });
  }

  create<T extends KubeObject>(r: ResourceRef, obj: T, namespace = obj.metadata.namespace): Promise<T> {
    return this.raw<T>('POST', collectionPath(r, namespace), withTypeMeta(r, obj));
  }

  update<T extends KubeObject>(r: ResourceRef, obj: T, subresource?: string): Promise<T> {
    const name = obj.metadata.name;
    if (!name) throw new Error(`update ${r.resource}: metadata.name is required`);
    return this.raw<T>('PUT', objectPath(r, name, obj.metadata.namespace, subresource), withTypeMeta(r, obj));
  }

  updateStatus<T extends KubeObject>(r: ResourceRef, obj: T): Promise<T> {
    return this.update(r, obj, 'status');
  }

  patch<T extends KubeObject>(r: ResourceRef, name: string, namespace: string | undefined, patch: unknown, type: PatchType = 'merge', opts: { subresource?: string; fieldManager?: string; force?: boolean } = {}): Promise<T> {
    return this.raw<T>('PATCH', objectPath(r, name, namespace, opts.subresource), patch, PATCH_CONTENT_TYPE[type], {
      fieldManager: opts.fieldManager ?? (type === 'apply' ? this.userAgent : undefined),
      force: opts.force,
    });
  }

  async delete(r: ResourceRef, name: string, namespace?: string, opts: { gracePeriodSeconds?: number; propagationPolicy?: 'Background' | 'Foreground' | 'Orphan'; preconditionsUid?: string } = {}): Promise<void> {
    const body = {
      apiVersion: 'v1', kind: 'DeleteOptions',
      gracePeriodSeconds: opts.gracePeriodSeconds,
      propagationPolicy: opts.propagationPolicy,
      preconditions: opts.preconditionsUid ? { uid: opts.preconditionsUid } : undefined,
    };
    await this.raw('DELETE', objectPath(r, name, namespace), body);
  }

  /** POST to a subresource, e.g. pods/binding or serviceaccounts/token. */
  createSubresource<T>(r: ResourceRef, name: string, namespace: string | undefined, subresource: string, body: unknown): Promise<T> {
    return this.raw<T>('POST', objectPath(r, name, namespace, subresource), body);
  }

  /**
   * Streams watch events to onEvent until stopped or the server ends the stream.
   * `done` resolves when the stream ends (callers re-list or re-watch, as informers do).
   */
  watch<T extends KubeObject>(r: ResourceRef, opts: WatchOptions, onEvent: (e: WatchEvent<T>) => void): Watch {
    const controller = new AbortController();
    const url = this.access.server + collectionPath(r, opts.namespace) + queryString({
      watch: 1, labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector,
      resourceVersion: opts.resourceVersion, allowWatchBookmarks: opts.allowWatchBookmarks,
      timeoutSeconds: opts.timeoutSeconds,
    });
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': this.userAgent };
    const token = this.token();
    if (token) headers.authorization = `Bearer ${token}`;
    const done = (async () => {
      const res = await request(url, { method: 'GET', headers, dispatcher: this.agent, signal: controller.signal, bodyTimeout: 0 });
      if (res.statusCode !== 200) {
        const text = await res.body.text();
        let status: Status | undefined;
        try { const p = JSON.parse(text) as unknown; if (isStatus(p)) status = p; } catch { /* not JSON */ }
        throw new ApiError(res.statusCode, status, `WATCH ${r.resource}`);
      }
      let buffered = '';
      for await (const chunk of res.body) {
        buffered += (chunk as Buffer).toString('utf8');
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (line) onEvent(JSON.parse(line) as WatchEvent<T>);
        }
      }
    })().catch((e: unknown) => {
      if (controller.signal.aborted) return;
      throw e;
    });
    return { stop: () => controller.abort(), done };
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

function withTypeMeta<T extends KubeObject>(r: ResourceRef, obj: T): T {
  return { ...obj, apiVersion: obj.apiVersion ?? apiVersionOf(r), kind: obj.kind ?? r.kind };
}

function isStatus(v: unknown): v is Status {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'Status';
}

function queryString(q?: Record<string, string | number | boolean | undefined>): string {
  if (!q) return '';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined || v === '') continue;
    parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}
