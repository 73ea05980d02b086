// Dynamic admission: calls Mutating/ValidatingWebhookConfigurations with an
// admission.k8s.io/v1 AdmissionReview over HTTPS and applies the returned JSONPatch.
import * as https from 'node:https';
import { randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import { matchesSelector } from '../../../api/kube/labels.js';
import type { LabelSelector } from '../../../api/kube/types.js';
import type { Store } from '../../store/types.js';
import { ApiError, internalError } from '../errors.js';
import { applyJsonPatch } from '../patch.js';
import { childArray, getPath, isObj, str, stringMap, type Json } from '../util.js';
import type { KindInfo } from '../registry/types.js';
import type { UserInfo } from '../authn.js';

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

export interface AdmissionAttributes {
  kind: KindInfo;
  version: string;
  operation: Operation;
  subresource: string;
  namespace: string;
  name: string;
  object?: Json;
  oldObject?: Json;
  user: UserInfo;
  dryRun: boolean;
  options?: Json;
}

interface Target { host: string; port: number; path: string; servername?: string; description: string }

const CONFIG_PREFIX = {
  mutating: '/registry/mutatingwebhookconfigurations.admissionregistration.k8s.io/',
  validating: '/registry/validatingwebhookconfigurations.admissionregistration.k8s.io/',
};

export class WebhookAdmission {
  constructor(private readonly store: Store) {}

  /** Runs matching mutating webhooks in order; returns the (possibly) patched object. */
  async mutate(a: AdmissionAttributes): Promise<Json | undefined> {
    let obj = a.object;
    for (const { hook } of await this.matching('mutating', a)) {
      const resp = await this.call(hook, { ...a, object: obj });
      if (!resp) continue;
      if (resp.patch && obj) {
        if (resp.patchType !== undefined && resp.patchType !== 'JSONPatch') throw internalError(`admission webhook "${String(hook.name)}" returned an unsupported patchType ${String(resp.patchType)}`);
        let ops: unknown;
        try { ops = JSON.parse(Buffer.from(String(resp.patch), 'base64').toString('utf8')); } catch { throw internalError(`admission webhook "${String(hook.name)}" returned an undecodable patch`); }
        try { obj = applyJsonPatch(obj, ops); } catch (e) { throw internalError(`admission webhook "${String(hook.name)}" returned a patch that does not apply: ${(e as Error).message}`); }
      }
    }
    return obj;
  }

  /** Runs matching validating webhooks concurrently; throws on the first denial. */
  async validate(a: AdmissionAttributes): Promise<void> {
    const hooks = await this.matching('validating', a);
    await Promise.all(hooks.map(({ hook }) => this.call(hook, a)));
  }

  private async matching(type: 'mutating' | 'validating', a: AdmissionAttributes): Promise<{ hook: Json }[]> {
    const { items } = await this.store.list(CONFIG_PREFIX[type]);
    const out: { hook: Json }[] = [];
    let nsLabels: Record<string, string> | undefined;
    for (const cfg of items) {
      for (const hook of childArray(cfg, 'webhooks')) {
        if (!isObj(hook) || !rulesMatch(hook, a)) continue;
        if (!objectSelectorMatches(hook, a)) continue;
        if (a.kind.namespaced || (a.kind.group === '' && a.kind.resource === 'namespaces')) {
          const sel = isObj(hook.namespaceSelector) ? hook.namespaceSelector : {};
          if (Object.keys(sel).length > 0) {
            if (a.kind.resource === 'namespaces' && a.kind.group === '') nsLabels = stringMap(getPath(a.object ?? a.oldObject, 'metadata.labels'));
            else if (nsLabels === undefined) {
              const ns = await this.store.get(`/registry/namespaces/${a.namespace}`);
              nsLabels = stringMap(getPath(ns, 'metadata.labels'));
            }
            if (!matchesSelector(sel as LabelSelector, nsLabels)) continue;
          }
        }
        out.push({ hook });
      }
    }
    return out;
  }

  private async call(hook: Json, a: AdmissionAttributes): Promise<Json | undefined> {
    const name = String(hook.name);
    const uid = randomUUID();
    const gv = { group: a.kind.group, version: a.version };
    const review = {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid,
        kind: { ...gv, kind: a.kind.kind },
        resource: { ...gv, resource: a.kind.resource },
        subResource: a.subresource || undefined,
        requestKind: { ...gv, kind: a.kind.kind },
        requestResource: { ...gv, resource: a.kind.resource },
        requestSubResource: a.subresource || undefined,
        name: a.name || undefined,
        namespace: a.namespace || undefined,
        operation: a.operation,
        userInfo: { username: a.user.username, uid: a.user.uid, groups: a.user.groups, extra: a.user.extra },
        object: a.operation === 'DELETE' ? null : a.object ?? null,
        oldObject: a.oldObject ?? null,
        dryRun: a.dryRun,
        options: a.options ?? null,
      },
    };
    const failOpen = hook.failurePolicy === 'Ignore';
    let response: Json;
    try {
      const target = await this.resolve(hook);
      const caBundle = str(getPath(hook, 'clientConfig.caBundle'));
      const timeoutMs = (typeof hook.timeoutSeconds === 'number' ? hook.timeoutSeconds : 10) * 1000;
      const body = await post(target, JSON.stringify(review), caBundle ? Buffer.from(caBundle, 'base64').toString('utf8') : undefined, timeoutMs);
      const parsed: unknown = JSON.parse(body);
      const r = isObj(parsed) ? parsed.response : undefined;
      if (!isObj(r)) throw new Error('the response has no "response" field');
      if (r.uid !== uid) throw new Error(`expected response.uid="${uid}", got "${String(r.uid)}"`);
      response = r;
    } catch (e) {
      if (failOpen) {
        console.error(`apiserver: failed calling webhook "${name}" (failurePolicy Ignore): ${(e as Error).message}`);
        return undefined;
      }
      throw internalError(`failed calling webhook "${name}": ${(e as Error).message}`);
    }
    if (response.allowed !== true) {
      const status = isObj(response.status) ? response.status : {};
      const code = typeof status.code === 'number' && status.code >= 400 ? status.code : 403;
      const msg = str(status.message) ?? 'denied';
      throw new ApiError(code, str(status.reason) ?? (code === 403 ? 'Forbidden' : 'BadRequest'), `admission webhook "${name}" denied the request: ${msg}`);
    }
    return response;
  }

  /** clientConfig.url, or clientConfig.service resolved to a ready endpoint of that Service. */
  private async resolve(hook: Json): Promise<Target> {
    const url = str(getPath(hook, 'clientConfig.url'));
    if (url) {
      const u = new URL(url);
      return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 443), path: u.pathname + u.search, servername: isIP(u.hostname) ? undefined : u.hostname, description: url };
    }
    const svc = getPath(hook, 'clientConfig.service');
    if (!isObj(svc)) throw new Error('clientConfig has neither url nor service');
    const ns = String(svc.namespace);
    const name = String(svc.name);
    const port = typeof svc.port === 'number' ? svc.port : 443;
    const service = await this.store.get(`/registry/services/${ns}/${name}`);
    if (!service) throw new Error(`service "${name}" not found in namespace "${ns}"`);
    const svcPort = childArray(isObj(service.spec) ? service.spec : {}, 'ports').find((p) => isObj(p) && p.port === port);
    if (!isObj(svcPort)) throw new Error(`service ${ns}/${name} has no port ${port}`);
    const eps = await this.store.get(`/registry/endpoints/${ns}/${name}`);
    for (const subset of childArray(eps ?? {}, 'subsets')) {
      if (!isObj(subset)) continue;
      const ports = childArray(subset, 'ports').filter(isObj);
      const p = ports.find((x) => (svcPort.name ? x.name === svcPort.name : true) && (typeof svcPort.targetPort !== 'number' || x.port === svcPort.targetPort)) ?? (ports.length === 1 ? ports[0] : undefined);
      const addr = childArray(subset, 'addresses').find((x) => isObj(x) && typeof x.ip === 'string');
      if (p && typeof p.port === 'number' && isObj(addr)) {
        return { host: String(addr.ip), port: p.port, path: str(svc.path) ?? '/', servername: `${name}.${ns}.svc`, description: `${name}.${ns}.svc:${port}` };
      }
    }
    throw new Error(`no endpoints available for service "${name}" in namespace "${ns}"`);
  }
}

function rulesMatch(hook: Json, a: AdmissionAttributes): boolean {
  return childArray(hook, 'rules').some((r) => {
    if (!isObj(r)) return false;
    const has = (list: unknown, v: string): boolean => Array.isArray(list) && (list.includes('*') || list.includes(v));
    if (!has(r.operations, a.operation) || !has(r.apiGroups, a.kind.group) || !has(r.apiVersions, a.version)) return false;
    const scope = r.scope ?? '*';
    if (scope === 'Namespaced' && !a.kind.namespaced) return false;
    if (scope === 'Cluster' && a.kind.namespaced) return false;
    const resources = Array.isArray(r.resources) ? r.resources.map(String) : [];
    return resources.some((res) => {
      const [rr, sub = ''] = res.split('/');
      if (rr !== '*' && rr !== a.kind.resource) return false;
      if (res.includes('/')) return sub === '*' || sub === a.subresource;
      return a.subresource === '';
    });
  });
}

function objectSelectorMatches(hook: Json, a: AdmissionAttributes): boolean {
  const sel = isObj(hook.objectSelector) ? hook.objectSelector : {};
  if (Object.keys(sel).length === 0) return true;
  const labelsOf = (o: Json | undefined): Record<string, string> => stringMap(getPath(o, 'metadata.labels'));
  return matchesSelector(sel as LabelSelector, labelsOf(a.object)) || (a.oldObject !== undefined && matchesSelector(sel as LabelSelector, labelsOf(a.oldObject)));
}

function post(t: Target, body: string, ca: string | undefined, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: t.host, port: t.port, path: t.path, method: 'POST', servername: t.servername, ca, timeout: timeoutMs,
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'Content-Length': Buffer.byteLength(body) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) reject(new Error(`${t.description} answered HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
        else resolve(text);
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`context deadline exceeded (timeout ${timeoutMs / 1000}s calling ${t.description})`)));
    req.on('error', reject);
    req.end(body);
  });
}
