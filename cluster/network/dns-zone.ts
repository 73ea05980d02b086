import { parseIpv4 } from './cidr.js';
import { type Collection, type Endpoints, type Pod, type Service, isHeadless, objectKey, protocolOf, readyEndpointsFor, toList } from './kube-types.js';
import { Rcode, RRClass, RRType, type ResourceRecord } from './dns-wire.js';

export interface ZoneAnswer {
  rcode: number;
  answers: ResourceRecord[];
  authorities: ResourceRecord[];
  additionals: ResourceRecord[];
}

interface SrvTarget {
  port: number;
  target: string;
}

interface NameRecords {
  a: string[];
  srv: SrvTarget[];
  cname?: string;
}

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * The cluster's DNS data (Kubernetes DNS specification, the kube-dns/CoreDNS shape), built
 * whole from Services and Endpoints on each update and answered from memory. Names are
 * stored lowercased; lookups are case-insensitive.
 */
export class ClusterZone {
  readonly domain: string;
  private records = new Map<string, NameRecords>();
  /** Every existing name and its ancestors inside the domain, so empty non-terminals answer NOERROR, not NXDOMAIN. */
  private existing = new Set<string>();
  private serial = 1;

  constructor(domain: string, readonly ttl = 5) {
    this.domain = domain.toLowerCase().replace(/\.$/, '');
    if (!this.domain.split('.').every((l) => DNS_LABEL.test(l))) throw new Error(`dns domain: "${domain}" is not a valid domain name`);
    this.rebuild([], []);
  }

  update(services: Collection<Service>, endpoints: Collection<Endpoints>, pods?: Collection<Pod>): void {
    this.rebuild(toList(services), toList(endpoints), toList(pods));
    this.serial = (this.serial + 1) >>> 0;
  }

  private rebuild(services: Service[], endpointsList: Endpoints[], pods: Pod[] = []): void {
    const records = new Map<string, NameRecords>();
    const get = (name: string): NameRecords => {
      let r = records.get(name);
      if (!r) records.set(name, (r = { a: [], srv: [] }));
      return r;
    };
    const endpointsByKey = new Map(endpointsList.map((e) => [objectKey(e.metadata), e] as const));

    for (const svc of services) {
      const name = (svc.metadata.name ?? '').toLowerCase();
      const ns = (svc.metadata.namespace ?? 'default').toLowerCase();
      if (!DNS_LABEL.test(name) || !DNS_LABEL.test(ns)) continue;
      const fqdn = `${name}.${ns}.svc.${this.domain}`;
      const spec = svc.spec ?? {};
      const eps = endpointsByKey.get(objectKey(svc.metadata));
      const own = get(fqdn);

      if (spec.type === 'ExternalName') {
        if (spec.externalName) own.cname = spec.externalName.toLowerCase().replace(/\.$/, '');
        continue;
      }
      const headless = isHeadless(svc);
      if (!headless) {
        if (spec.clusterIP && parseIpv4(spec.clusterIP) !== undefined) own.a.push(spec.clusterIP);
      } else {
        // Headless: the ready pod addresses, plus a name per endpoint (hostname or dashed IP) as SRV targets.
        for (const subset of eps?.subsets ?? []) {
          for (const addr of subset.addresses ?? []) {
            if (parseIpv4(addr.ip) === undefined) continue;
            if (!own.a.includes(addr.ip)) own.a.push(addr.ip);
            const host = endpointHostLabel(addr.ip, addr.hostname);
            const hostRecords = get(`${host}.${fqdn}`);
            if (!hostRecords.a.includes(addr.ip)) hostRecords.a.push(addr.ip);
          }
        }
      }
      for (const port of spec.ports ?? []) {
        const portName = (port.name ?? '').toLowerCase();
        if (!portName || !DNS_LABEL.test(portName)) continue; // SRV only for named ports
        const proto = protocolOf(port);
        const srvName = `_${portName}._${proto.toLowerCase()}.${fqdn}`;
        const srv = get(srvName).srv;
        if (!headless) {
          srv.push({ port: port.port, target: fqdn });
        } else {
          for (const ep of readyEndpointsFor(eps, port.name ?? '', proto)) {
            if (parseIpv4(ep.ip) === undefined) continue;
            srv.push({ port: ep.port, target: `${endpointHostLabel(ep.ip, ep.hostname)}.${fqdn}` });
          }
        }
      }
    }

    // `<hostname>.<subdomain>.<ns>.svc`: a pod with spec.hostname and spec.subdomain, when a
    // headless Service named like the subdomain exists in its namespace (the DNS spec's pod
    // records; kube-dns learns them from endpoint hostnames, we read the pods directly so it
    // does not depend on the endpoints controller filling `hostname`). Like the endpoints,
    // only ready pods, unless the service publishes not-ready addresses.
    const headlessByKey = new Map(services.filter(isHeadless).map((s) => [objectKey(s.metadata), s] as const));
    for (const pod of pods) {
      const hostname = pod.spec?.hostname?.toLowerCase();
      const subdomain = pod.spec?.subdomain?.toLowerCase();
      const ip = pod.status?.podIP;
      if (!hostname || !subdomain || !ip || parseIpv4(ip) === undefined) continue;
      if (!DNS_LABEL.test(hostname) || !DNS_LABEL.test(subdomain)) continue;
      if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') continue;
      const ns = (pod.metadata.namespace ?? 'default').toLowerCase();
      const svc = headlessByKey.get(`${ns}/${subdomain}`);
      if (!svc) continue;
      const ready = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
      if (!ready && !svc.spec?.publishNotReadyAddresses) continue;
      const r = get(`${hostname}.${subdomain}.${ns}.svc.${this.domain}`);
      if (!r.a.includes(ip)) r.a.push(ip);
    }

    const existing = new Set<string>([this.domain, `svc.${this.domain}`, `pod.${this.domain}`]);
    for (const name of records.keys()) {
      let n = name;
      while (n.length > this.domain.length) {
        existing.add(n);
        n = n.slice(n.indexOf('.') + 1);
      }
    }
    this.records = records;
    this.existing = existing;
  }

  private soa(): ResourceRecord {
    return {
      name: this.domain,
      type: RRType.SOA,
      class: RRClass.IN,
      ttl: this.ttl,
      data: { kind: 'SOA', mname: `ns.dns.${this.domain}`, rname: `hostmaster.${this.domain}`, serial: this.serial, refresh: 7200, retry: 1800, expire: 86400, minimum: this.ttl },
    };
  }

  /** Whether this zone is authoritative for `qname`. */
  inZone(qname: string): boolean {
    const n = qname.toLowerCase().replace(/\.$/, '');
    return n === this.domain || n.endsWith(`.${this.domain}`);
  }

  /**
   * Answers one question. `qname` is echoed as the owner name exactly as asked (so the
   * encoder compresses it to the question, preserving the client's case).
   */
  lookup(qname: string, qtype: number): ZoneAnswer {
    const name = qname.toLowerCase().replace(/\.$/, '');
    const out: ZoneAnswer = { rcode: Rcode.NOERROR, answers: [], authorities: [], additionals: [] };
    if (!this.inZone(name)) return { ...out, rcode: Rcode.REFUSED };
    const rr = (owner: string, type: number, data: ResourceRecord['data']): ResourceRecord => ({ name: owner, type, class: RRClass.IN, ttl: this.ttl, data });

    const podIP = this.podAddress(name);
    const rec: NameRecords | undefined = podIP ? { a: [podIP], srv: [] } : this.records.get(name);
    if (!rec && !this.existing.has(name)) {
      out.rcode = Rcode.NXDOMAIN;
      out.authorities.push(this.soa());
      return out;
    }
    const wantsAll = qtype === RRType.ANY;
    if (rec?.cname) {
      out.answers.push(rr(qname, RRType.CNAME, { kind: 'CNAME', target: rec.cname }));
      return out;
    }
    if (rec && (qtype === RRType.A || wantsAll)) {
      for (const a of rec.a) out.answers.push(rr(qname, RRType.A, { kind: 'A', address: a }));
    }
    if (rec && (qtype === RRType.SRV || wantsAll)) {
      for (const s of rec.srv) {
        out.answers.push(rr(qname, RRType.SRV, { kind: 'SRV', priority: 0, weight: Math.floor(100 / rec.srv.length), port: s.port, target: s.target }));
        for (const a of this.records.get(s.target)?.a ?? []) out.additionals.push(rr(s.target, RRType.A, { kind: 'A', address: a }));
      }
    }
    if (name === this.domain && (qtype === RRType.SOA || wantsAll)) out.answers.push(this.soa());
    // NODATA (e.g. AAAA for an IPv4-only service): NOERROR, no answer, SOA for negative caching.
    if (out.answers.length === 0) out.authorities.push(this.soa());
    return out;
  }

  /** `<a-b-c-d>.<ns>.pod.<domain>` -> a.b.c.d (kube-dns "pods insecure" mode: any namespace). */
  private podAddress(name: string): string | undefined {
    const suffix = `.pod.${this.domain}`;
    if (!name.endsWith(suffix)) return undefined;
    const labels = name.slice(0, -suffix.length).split('.');
    if (labels.length !== 2 || !DNS_LABEL.test(labels[1])) return undefined;
    const ip = labels[0].replace(/-/g, '.');
    return /^\d+-\d+-\d+-\d+$/.test(labels[0]) && parseIpv4(ip) !== undefined ? ip : undefined;
  }
}

function endpointHostLabel(ip: string, hostname: string | undefined): string {
  const h = hostname?.toLowerCase();
  return h && DNS_LABEL.test(h) ? h : ip.replace(/\./g, '-');
}
