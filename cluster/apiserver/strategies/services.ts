// Services: ClusterIP allocation (and NodePorts), port defaults, clusterIP immutability.
import type { StatusCause } from '../../../api/kube/types.js';
import { fieldImmutable, fieldInvalid, fieldNotSupported, fieldRequired, invalid } from '../errors.js';
import { childArray, getPath, isObj, str, type Json } from '../util.js';
import type { KindInfo } from '../registry/types.js';
import type { ServiceIPAllocator } from '../ipalloc.js';
import { age, col, kind, nameColumn, validateDnsLabel } from './common.js';

const TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'];

class NodePortAllocator {
  private used = new Set<number>();
  claim(p: number): boolean { if (p < 30000 || p > 32767 || this.used.has(p)) return false; this.used.add(p); return true; }
  allocate(): number | undefined {
    for (let i = 0; i < 2768; i++) { const p = 30000 + ((Math.floor(Math.random() * 2768) + i) % 2768); if (this.claim(p)) return p; }
    return undefined;
  }
  release(p: number): void { this.used.delete(p); }
}

function spec(svc: Json): Json {
  if (!isObj(svc.spec)) svc.spec = {};
  return svc.spec as Json;
}

function portsText(svc: Json): string {
  const ports = childArray(spec(svc), 'ports').filter(isObj);
  if (ports.length === 0) return '<none>';
  return ports.map((p) => `${String(p.port)}${p.nodePort ? `:${String(p.nodePort)}` : ''}/${String(p.protocol ?? 'TCP')}`).join(',');
}

export function servicesKind(ips: ServiceIPAllocator): { kind: KindInfo; rebuild(services: Json[]): void } {
  const nodePorts = new NodePortAllocator();
  const releaseAll = (svc: Json): void => {
    const ip = str(getPath(svc, 'spec.clusterIP'));
    if (ip && ip !== 'None') ips.release(ip);
    for (const p of childArray(spec(svc), 'ports')) if (isObj(p) && typeof p.nodePort === 'number') nodePorts.release(p.nodePort);
  };
  const k = kind({
    group: '', version: 'v1', resource: 'services', kind: 'Service', shortNames: ['svc'], categories: ['all'], status: true,
    strategy: {
      defaults(svc) {
        const s = spec(svc);
        s.type ??= 'ClusterIP';
        if (s.type !== 'ExternalName') {
          s.sessionAffinity ??= 'None';
          s.internalTrafficPolicy ??= 'Cluster';
        }
        for (const p of childArray(s, 'ports')) {
          if (!isObj(p)) continue;
          p.protocol ??= 'TCP';
          p.targetPort ??= p.port;
        }
      },
      prepareForCreate(svc) {
        svc.status = { loadBalancer: {} };
      },
      prepareForUpdate(svc, old) {
        // Clients commonly omit the allocated fields when they PUT or apply: keep them.
        const s = spec(svc);
        const o = spec(old);
        if (s.clusterIP === undefined || s.clusterIP === '') { s.clusterIP = o.clusterIP; s.clusterIPs = o.clusterIPs; }
        if (s.clusterIPs === undefined) s.clusterIPs = o.clusterIPs;
        s.ipFamilies ??= o.ipFamilies;
        s.ipFamilyPolicy ??= o.ipFamilyPolicy;
        const oldPorts = childArray(o, 'ports').filter(isObj);
        for (const p of childArray(s, 'ports')) {
          if (!isObj(p) || p.nodePort !== undefined || (s.type !== 'NodePort' && s.type !== 'LoadBalancer')) continue;
          const prev = oldPorts.find((q) => q.port === p.port && q.protocol === p.protocol);
          if (prev && prev.nodePort !== undefined) p.nodePort = prev.nodePort;
        }
      },
      validate(svc) {
        const errs: StatusCause[] = [...validateDnsLabel('metadata.name', getPath(svc, 'metadata.name'))];
        const s = spec(svc);
        if (!TYPES.includes(String(s.type))) errs.push(fieldNotSupported('spec.type', s.type, TYPES));
        const ports = childArray(s, 'ports');
        if (ports.length === 0 && s.type !== 'ExternalName' && s.clusterIP !== 'None') errs.push(fieldRequired('spec.ports'));
        const names = new Set<string>();
        ports.forEach((p, i) => {
          if (!isObj(p)) return;
          if (typeof p.port !== 'number' || p.port < 1 || p.port > 65535) errs.push(fieldInvalid(`spec.ports[${i}].port`, p.port, 'must be between 1 and 65535, inclusive'));
          if (ports.length > 1 && !p.name) errs.push(fieldRequired(`spec.ports[${i}].name`));
          if (typeof p.name === 'string') {
            if (names.has(p.name)) errs.push({ reason: 'FieldValueDuplicate', message: `Duplicate value: "${p.name}"`, field: `spec.ports[${i}].name` });
            names.add(p.name);
          }
          if (!['TCP', 'UDP', 'SCTP'].includes(String(p.protocol))) errs.push(fieldNotSupported(`spec.ports[${i}].protocol`, p.protocol, ['TCP', 'UDP', 'SCTP']));
        });
        if (s.type === 'ExternalName' && !s.externalName) errs.push(fieldRequired('spec.externalName'));
        return errs;
      },
      validateUpdate(svc, old) {
        const errs = this.validate!(svc, { user: { username: '', groups: [] }, dryRun: false }) as StatusCause[];
        const a = getPath(svc, 'spec.clusterIP');
        const b = getPath(old, 'spec.clusterIP');
        if (b !== undefined && a !== b) errs.push(fieldImmutable('spec.clusterIP'));
        return errs;
      },
      reserve(svc, ctx) {
        const s = spec(svc);
        const name = String(getPath(svc, 'metadata.name') ?? '');
        const taken: (() => void)[] = [];
        const rollback = (): void => { for (const t of taken) t(); };
        if (s.type !== 'ExternalName') {
          const requested = str(s.clusterIP);
          if (requested === 'None') {
            s.clusterIPs = ['None'];
          } else if (requested) {
            if (!ips.contains(requested)) throw invalid('Service', '', name, [fieldInvalid('spec.clusterIPs', [requested], `failed to allocate IP ${requested}: the provided IP (${requested}) is not in the valid range. The range of valid IPs is ${ips.cidr}`)]);
            if (!ips.claim(requested)) throw invalid('Service', '', name, [fieldInvalid('spec.clusterIPs', [requested], `failed to allocate IP ${requested}: provided IP is already allocated`)]);
            taken.push(() => ips.release(requested));
            s.clusterIPs = [requested];
          } else {
            const ip = ips.allocate();
            if (!ip) throw invalid('Service', '', name, [fieldInvalid('spec.clusterIPs', [], `failed to allocate a serviceIP: range is full (${ips.cidr})`)]);
            taken.push(() => ips.release(ip));
            s.clusterIP = ip;
            s.clusterIPs = [ip];
          }
          s.ipFamilies ??= ['IPv4'];
          s.ipFamilyPolicy ??= 'SingleStack';
        }
        if (s.type === 'NodePort' || s.type === 'LoadBalancer') {
          for (const p of childArray(s, 'ports')) {
            if (!isObj(p)) continue;
            if (typeof p.nodePort === 'number') {
              if (!nodePorts.claim(p.nodePort)) { rollback(); throw invalid('Service', '', name, [fieldInvalid('spec.ports.nodePort', p.nodePort, 'provided port is already allocated')]); }
            } else {
              const np = nodePorts.allocate();
              if (np === undefined) { rollback(); throw invalid('Service', '', name, [fieldInvalid('spec.ports.nodePort', null, 'range is full')]); }
              p.nodePort = np;
            }
            const np = p.nodePort as number;
            taken.push(() => nodePorts.release(np));
          }
        }
        void ctx;
        return rollback;
      },
      afterDelete(svc) { releaseAll(svc); },
    },
    table: {
      columns: [nameColumn, col('Type'), col('Cluster-IP'), col('External-IP'), col('Port(s)'), col('Age'), col('Selector', 1)],
      cells(svc) {
        const s = spec(svc);
        const sel = isObj(s.selector) ? Object.entries(s.selector).map(([k2, v]) => `${k2}=${String(v)}`).join(',') : '';
        const ext = s.type === 'ExternalName' ? String(s.externalName ?? '') : '<none>';
        return [getPath(svc, 'metadata.name'), s.type, s.clusterIP ?? '<none>', ext, portsText(svc), age(svc), sel || '<none>'];
      },
    },
  });
  return {
    kind: k,
    rebuild(services) {
      for (const svc of services) {
        const ip = str(getPath(svc, 'spec.clusterIP'));
        if (ip && ip !== 'None') ips.claim(ip);
        for (const p of childArray(spec(svc), 'ports')) if (isObj(p) && typeof p.nodePort === 'number') nodePorts.claim(p.nodePort);
      }
    },
  };
}
