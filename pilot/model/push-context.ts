// The immutable snapshot every xDS generator reads: services by FQDN with endpoints per
// port (pod labels attached), the VirtualService and DestinationRule for each host, pods
// by IP and name, and the warnings found while folding the inputs. Built in one pass from
// plain object lists, so tests and the informer layer feed it the same way.
import type { Pod } from '../../api/kube/index.js';
import { matchesMap } from '../../api/kube/index.js';
import type { HTTPRouteDestination } from '../../api/istio/index.js';
import type { ConfigInputs } from './inputs.js';
import { DEFAULT_DOMAIN, resolveHost } from './hosts.js';
import { serviceEntryModels } from './service-entry.js';
import { expandDelegates } from './delegate.js';
import { buildService, indexPods, isHttpProtocol, resolveTargetPort, type EndpointModel, type PodIndex, type PortProtocol, type ServiceModel } from './service.js';
import {
  appliesToMesh, byAge, destinationRuleModel, exportedTo, indexByHost, virtualServiceModel,
  type DestinationRuleModel, type SubsetModel, type VirtualServiceModel,
} from './istio-config.js';
import { securityOptions, type SecurityOptions } from '../security/options.js';
import { meshOptions, type MeshOptions } from './mesh-config.js';
import { securityWarnings } from '../security/index.js';
import { gatewayServerProblems } from './gateway-tls.js';

/** A workload as the proxy describes it: its namespace, labels and (when known) its pod. */
export interface Workload { namespace: string; labels: Readonly<Record<string, string>>; pod?: Pod }

/** One port the workload serves, with the services that expose it. */
export interface InboundPort {
  port: number;
  /** Served through an HTTP connection manager (else a TCP proxy), from the service ports' protocols. */
  http: boolean;
  /** The protocol of the first service port targeting it (decides the HTTP version to the app). */
  protocol: PortProtocol;
  services: readonly { fqdn: string; servicePort: number; portName?: string }[];
}


export interface PushContextOptions { version: string; domain?: string; createdAt?: Date; security?: Partial<SecurityOptions>; mesh?: Partial<MeshOptions> }

export class PushContext {
  readonly version: string;
  readonly domain: string;
  readonly createdAt: Date;
  readonly security: SecurityOptions;
  readonly mesh: MeshOptions;
  readonly inputs: Readonly<ConfigInputs>;
  readonly warnings: readonly string[];
  private sourceLabelKeysMemo?: readonly string[];
  private readonly servicesByFqdn: ReadonlyMap<string, ServiceModel>;
  private readonly sortedServices: readonly ServiceModel[];
  private readonly vsByHost: ReadonlyMap<string, readonly VirtualServiceModel[]>;
  private readonly drByHost: ReadonlyMap<string, readonly DestinationRuleModel[]>;
  private readonly pods: PodIndex;

  private constructor(opts: Required<Omit<PushContextOptions, 'security' | 'mesh'>> & { security: SecurityOptions; mesh: MeshOptions }, inputs: ConfigInputs, services: Map<string, ServiceModel>, vs: Map<string, VirtualServiceModel[]>, dr: Map<string, DestinationRuleModel[]>, pods: PodIndex, warnings: string[]) {
    this.version = opts.version;
    this.domain = opts.domain;
    this.createdAt = opts.createdAt;
    this.security = opts.security;
    this.mesh = opts.mesh;
    this.inputs = Object.freeze({ ...inputs });
    this.servicesByFqdn = services;
    this.sortedServices = Object.freeze([...services.values()].sort((a, b) => (a.fqdn < b.fqdn ? -1 : a.fqdn > b.fqdn ? 1 : 0)));
    this.vsByHost = vs;
    this.drByHost = dr;
    this.pods = pods;
    this.warnings = warnings; // frozen by build() once validation has added its findings
  }

  static build(inputs: ConfigInputs, opts: PushContextOptions): PushContext {
    const domain = opts.domain ?? DEFAULT_DOMAIN;
    const warnings: string[] = [];
    const warn = (m: string): void => { warnings.push(m); };
    const pods = indexPods(inputs.pods);

    const epByKey = new Map(inputs.endpoints.map((e) => [`${e.metadata.namespace}/${e.metadata.name}`, e]));
    const services = new Map<string, ServiceModel>();
    for (const svc of inputs.services) {
      const model = buildService(svc, epByKey.get(`${svc.metadata.namespace}/${svc.metadata.name}`), pods, domain);
      if (model) services.set(model.fqdn, model);
    }
    for (const model of serviceEntryModels(inputs.serviceEntries ?? [], warn)) {
      if (services.has(model.fqdn)) { warn(`ServiceEntry ${model.namespace}: host ${model.fqdn} is already defined (by a Service or an older entry); ignored`); continue; }
      services.set(model.fqdn, model);
    }
    const fqdns = [...services.keys()].sort();

    const vsByName = new Map(inputs.virtualServices.map((v) => [`${v.metadata.namespace ?? 'default'}/${v.metadata.name}`, v]));
    const vsRules = inputs.virtualServices.filter(appliesToMesh).sort(byAge).map((vs) => {
      const model = virtualServiceModel(expandDelegates(vs, vsByName, domain, warn), domain);
      return { model, hosts: model.hosts, id: `VirtualService ${model.namespace}/${model.name}` };
    });
    const drRules = [...inputs.destinationRules].sort(byAge).map((dr) => {
      const model = destinationRuleModel(dr, domain, warn);
      return { model, hosts: [model.host], id: `DestinationRule ${model.namespace}/${model.name}` };
    });
    for (const r of vsRules) {
      r.hosts.forEach((h, i) => {
        if (!fqdns.some((f) => f === h || (h.startsWith('*') && f.endsWith(h.slice(1))) || h === '*')) {
          warn(`${r.id}: spec.hosts[${i}] '${h}' matches no service; rules for it are not applied`);
        }
      });
    }
    for (const r of drRules) {
      if (!services.has(r.model.host) && !r.model.host.startsWith('*')) warn(`${r.id}: spec.host '${r.model.host}' matches no service; rule ignored`);
    }
    const vsByHost = indexByHost(vsRules, fqdns);
    const drByHost = indexByHost(drRules, fqdns);
    for (const [fqdn, drs] of drByHost) {
      // Istio keeps one DestinationRule per host and namespace (the oldest).
      const seen = new Set<string>();
      for (const dr of drs) {
        if (seen.has(dr.namespace)) warn(`DestinationRule ${dr.namespace}/${dr.name}: another, older DestinationRule in namespace ${dr.namespace} already applies to host ${fqdn}; this one is ignored`);
        seen.add(dr.namespace);
      }
    }

    const push = new PushContext({ version: opts.version, domain, createdAt: opts.createdAt ?? new Date(), security: securityOptions(opts.security), mesh: meshOptions(opts.mesh) }, inputs, services, vsByHost, drByHost, pods, warnings);
    push.validateDestinations(vsRules.map((r) => r.model), warn);
    for (const w of securityWarnings(push)) warn(w);
    for (const p of gatewayServerProblems(push)) warn(`Gateway ${p.gateway.namespace}/${p.gateway.name}: ${p.field}: ${p.message}; the server is not served to gateway workloads in ${p.workloadNamespace}`);
    Object.freeze(warnings);
    return push;
  }

  services(): readonly ServiceModel[] { return this.sortedServices; }

  /**
   * The label keys any VirtualService match selects source workloads by (sourceLabels).
   * Route output depends on a proxy's labels only through these keys, so proxies that agree
   * on them share generated routes (most meshes use none, and then every pod of a
   * namespace shares one).
   */
  sourceLabelKeys(): readonly string[] {
    if (!this.sourceLabelKeysMemo) {
      const keys = new Set<string>();
      for (const vs of this.inputs.virtualServices) {
        const spec = (vs as { spec?: { http?: { match?: { sourceLabels?: Record<string, string> }[] }[]; tcp?: { match?: { sourceLabels?: Record<string, string> }[] }[] } }).spec;
        for (const rule of [...(spec?.http ?? []), ...(spec?.tcp ?? [])]) {
          for (const m of rule.match ?? []) for (const k of Object.keys(m.sourceLabels ?? {})) keys.add(k);
        }
      }
      this.sourceLabelKeysMemo = [...keys].sort();
    }
    return this.sourceLabelKeysMemo;
  }
  service(fqdn: string): ServiceModel | undefined { return this.servicesByFqdn.get(fqdn); }
  /** The first (oldest) VirtualService for a host visible from `namespace` (all when undefined). */
  virtualServiceFor(fqdn: string, namespace?: string): VirtualServiceModel | undefined { return this.virtualServicesFor(fqdn, namespace)[0]; }

  /** Every VirtualService for a host visible from `namespace`, oldest first: Istio merges them. */
  virtualServicesFor(fqdn: string, namespace?: string): readonly VirtualServiceModel[] {
    return (this.vsByHost.get(fqdn) ?? []).filter((vs) => exportedTo(vs.exportTo, vs.namespace, namespace));
  }

  /** Every VirtualService of the snapshot that applies to some service, with its host. */
  allVirtualServices(): { fqdn: string; vs: VirtualServiceModel }[] {
    return [...this.vsByHost.entries()].flatMap(([fqdn, list]) => list.map((vs) => ({ fqdn, vs })));
  }

  /**
   * The DestinationRule for a host as seen from `namespace` (Istio's lookup order): one in
   * that namespace, else one in the service's namespace, else the oldest exported one.
   */
  destinationRuleFor(fqdn: string, namespace?: string): DestinationRuleModel | undefined {
    const visible = (this.drByHost.get(fqdn) ?? []).filter((dr) => exportedTo(dr.exportTo, dr.namespace, namespace));
    const svcNs = this.servicesByFqdn.get(fqdn)?.namespace;
    return visible.find((dr) => dr.namespace === namespace) ?? visible.find((dr) => dr.namespace === svcNs) ?? visible[0];
  }

  /** Every DestinationRule subset name defined for a host (by any rule). */
  subsetNames(fqdn: string): string[] {
    const names = new Set<string>();
    for (const dr of this.drByHost.get(fqdn) ?? []) for (const n of dr.subsets.keys()) names.add(n);
    return [...names];
  }

  /** The subset a DestinationRule defines for a host; undefined when none does. */
  subset(fqdn: string, name: string, namespace?: string): SubsetModel | undefined {
    return this.destinationRuleFor(fqdn, namespace)?.subsets.get(name)
      ?? (namespace === undefined ? (this.drByHost.get(fqdn) ?? []).find((dr) => dr.subsets.has(name))?.subsets.get(name) : undefined);
  }

  /** The endpoints of a service port, narrowed to a subset's labels when one is given. */
  endpoints(fqdn: string, port: number, subset?: string, namespace?: string): readonly EndpointModel[] {
    const all = this.servicesByFqdn.get(fqdn)?.endpoints.get(port) ?? [];
    if (!subset) return all;
    const s = this.subset(fqdn, subset, namespace);
    if (!s) return [];
    return all.filter((ep) => Object.entries(s.labels).every(([k, v]) => ep.labels[k] === v));
  }

  podByIp(ip: string): Pod | undefined { return this.pods.byIp.get(ip); }
  pod(namespace: string, name: string): Pod | undefined { return this.pods.byKey.get(`${namespace}/${name}`); }

  /** A destination host as written in a rule of `namespace`, resolved to an FQDN. */
  resolve(host: string, namespace: string): string { return resolveHost(host, namespace, this.domain); }

  /**
   * The ports a workload serves: for every service in its namespace whose selector matches
   * its labels, the service port's target port (named ports resolved on the pod).
   */
  inboundPorts(w: Workload): InboundPort[] {
    const byPort = new Map<number, { fqdn: string; servicePort: number; portName?: string }[]>();
    const httpPorts = new Set<number>();
    const protocols = new Map<number, PortProtocol>();
    for (const svc of this.sortedServices) {
      if (svc.namespace !== w.namespace || !matchesMap(svc.selector as Record<string, string> | undefined, w.labels as Record<string, string>)) continue;
      for (const sp of svc.ports) {
        if (sp.protocol !== 'TCP') continue;
        const target = resolveTargetPort(sp, w.pod);
        if (target === undefined) continue;
        const list = byPort.get(target) ?? [];
        list.push({ fqdn: svc.fqdn, servicePort: sp.port, portName: sp.name });
        if (isHttpProtocol(sp.appProtocol)) httpPorts.add(target);
        if (!protocols.has(target)) protocols.set(target, sp.appProtocol);
        byPort.set(target, list);
      }
    }
    return [...byPort.entries()].sort((a, b) => a[0] - b[0]).map(([port, services]) => ({ port, http: httpPorts.has(port), protocol: protocols.get(port) ?? 'UNKNOWN', services }));
  }

  // A route to a host or subset that does not exist falls back (generators/destination-fallback.ts),
  // but the author should learn about it: one warning per bad reference.
  private validateDestinations(rules: readonly VirtualServiceModel[], warn: (m: string) => void): void {
    for (const vs of rules) {
      vs.http.forEach((route, i) => {
        if (!route.route?.length && !route.directResponse && route.redirect === undefined && route.delegate === undefined) {
          warn(`VirtualService ${vs.namespace}/${vs.name}: spec.http[${i}] has no route, redirect or directResponse; rule skipped`);
        }
        (route.route ?? []).forEach((d: HTTPRouteDestination, j) => {
          const where = `VirtualService ${vs.namespace}/${vs.name}: spec.http[${i}].route[${j}].destination`;
          const host = d.destination?.host;
          if (!host) { warn(`${where}.host is required`); return; }
          const fqdn = this.resolve(host, vs.namespace);
          const svc = this.servicesByFqdn.get(fqdn);
          if (!svc) { warn(`${where}.host '${host}' (${fqdn}) matches no service; its share of traffic goes to the rule's other destinations (503 if there are none)`); return; }
          const port = d.destination.port?.number;
          if (port !== undefined && !svc.ports.some((p) => p.port === port)) {
            warn(`${where}.port.number ${port} is not a port of service ${fqdn}; requests routed there fail with 503`);
          }
          if (d.destination.subset && !this.subset(fqdn, d.destination.subset)) {
            warn(`${where}.subset '${d.destination.subset}' is not defined by any DestinationRule for host ${fqdn}; its share of traffic goes to the rule's other destinations, or to all of ${fqdn} if there are none`);
          }
        });
      });
    }
  }
}
