import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { Resolver } from 'node:dns/promises';
import { decodeMessage, encodeMessage, encodeQuery, Rcode, RRType, type DnsMessage } from '../../cluster/network/dns-wire.js';
import { startClusterDNS, podResolvConf, type ClusterDNS } from '../../cluster/network/dns.js';
import type { Endpoints, Pod, Service } from '../../cluster/network/kube-types.js';

const services: Service[] = [
  { metadata: { name: 'web', namespace: 'default' }, spec: { clusterIP: '10.96.0.20', ports: [{ name: 'http', port: 80 }, { port: 81 }] } },
  { metadata: { name: 'db', namespace: 'data' }, spec: { clusterIP: 'None', ports: [{ name: 'pg', port: 5432 }] } },
  { metadata: { name: 'many', namespace: 'default' }, spec: { clusterIP: 'None' } },
  { metadata: { name: 'ext', namespace: 'default' }, spec: { type: 'ExternalName', externalName: 'db.example.invalid' } },
];
const endpoints: Endpoints[] = [
  { metadata: { name: 'db', namespace: 'data' }, subsets: [{ addresses: [{ ip: '10.244.0.5', hostname: 'db-0' }, { ip: '10.244.0.6' }], notReadyAddresses: [{ ip: '10.244.0.7' }], ports: [{ name: 'pg', port: 15432 }] }] },
  { metadata: { name: 'many', namespace: 'default' }, subsets: [{ addresses: Array.from({ length: 60 }, (_, i) => ({ ip: `10.244.1.${i + 1}` })), ports: [{ port: 1 }] }] },
];

describe('dns wire codec', () => {
  it('round-trips a message with compression and every record kind', () => {
    const m: DnsMessage = {
      id: 0xbeef, qr: true, opcode: 0, aa: true, tc: false, rd: true, ra: false, rcode: Rcode.NOERROR,
      questions: [{ name: '_http._tcp.Web.default.svc.cluster.local', type: RRType.SRV, class: 1 }],
      answers: [{ name: '_http._tcp.Web.default.svc.cluster.local', type: RRType.SRV, class: 1, ttl: 5, data: { kind: 'SRV', priority: 0, weight: 100, port: 80, target: 'web.default.svc.cluster.local' } }],
      authorities: [{ name: 'cluster.local', type: RRType.SOA, class: 1, ttl: 5, data: { kind: 'SOA', mname: 'ns.dns.cluster.local', rname: 'hostmaster.cluster.local', serial: 7, refresh: 1, retry: 2, expire: 3, minimum: 4 } }],
      additionals: [
        { name: 'web.default.svc.cluster.local', type: RRType.A, class: 1, ttl: 5, data: { kind: 'A', address: '10.96.0.20' } },
        { name: 'x.cluster.local', type: RRType.CNAME, class: 1, ttl: 5, data: { kind: 'CNAME', target: 'y.cluster.local' } },
      ],
    };
    const bytes = encodeMessage(m);
    assert.deepEqual(decodeMessage(bytes), m);
    // The answer's owner name is a pointer to the question name at offset 12.
    const answerStart = 12 + '_http._tcp.Web.default.svc.cluster.local'.length + 2 + 4;
    assert.equal(bytes.readUInt16BE(answerStart), 0xc00c);
    assert.ok(bytes.length < 200, `compressed size ${bytes.length}`);
  });

  it('rejects truncated input, pointer loops and oversized labels', () => {
    const q = encodeQuery(1, 'a.b', RRType.A);
    assert.throws(() => decodeMessage(q.subarray(0, q.length - 1)), /truncated|past the end/);
    const loop = Buffer.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]);
    assert.throws(() => decodeMessage(loop), /loop/);
    assert.throws(() => encodeQuery(1, `${'x'.repeat(64)}.local`, RRType.A), /1-63 octets/);
  });
});

describe('cluster DNS server (loopback)', () => {
  let server: ClusterDNS;
  let port: number;
  let resolver: Resolver;

  before(async () => {
    server = await startClusterDNS({ listen: [{ host: '127.0.0.1', port: 0 }], domain: 'cluster.local' });
    server.update(services, endpoints);
    port = server.addresses[0].port;
    resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`127.0.0.1:${port}`]);
  });
  after(async () => {
    await server?.close();
  });

  async function udp(query: Buffer): Promise<DnsMessage> {
    const sock = dgram.createSocket('udp4');
    try {
      return await new Promise<DnsMessage>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no UDP answer')), 2000);
        sock.once('message', (msg) => {
          clearTimeout(timer);
          resolve(decodeMessage(msg));
        });
        sock.send(query, port, '127.0.0.1');
      });
    } finally {
      sock.close();
    }
  }

  async function tcp(queries: Buffer[]): Promise<DnsMessage[]> {
    const sock = net.connect(port, '127.0.0.1');
    const framed = Buffer.concat(queries.flatMap((q) => [Buffer.from([q.length >> 8, q.length & 255]), q]));
    // Split the write to exercise reassembly of partial frames.
    sock.write(framed.subarray(0, 3));
    setTimeout(() => sock.write(framed.subarray(3)), 20);
    const answers: DnsMessage[] = [];
    let buf = Buffer.alloc(0);
    return new Promise((resolve, reject) => {
      sock.on('error', reject);
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          answers.push(decodeMessage(buf.subarray(2, 2 + buf.readUInt16BE(0))));
          buf = buf.subarray(2 + buf.readUInt16BE(0));
        }
        if (answers.length === queries.length) {
          sock.end();
          resolve(answers);
        }
      });
    });
  }

  it('answers A for a ClusterIP service (through a real resolver)', async () => {
    assert.deepEqual(await resolver.resolve4('web.default.svc.cluster.local'), ['10.96.0.20']);
    assert.deepEqual(await resolver.resolve4('WEB.Default.SVC.cluster.LOCAL'), ['10.96.0.20'], 'case-insensitive');
  });

  it('answers headless services with the ready pod addresses', async () => {
    assert.deepEqual((await resolver.resolve4('db.data.svc.cluster.local')).sort(), ['10.244.0.5', '10.244.0.6']);
    assert.deepEqual(await resolver.resolve4('db-0.db.data.svc.cluster.local'), ['10.244.0.5']);
  });

  it('answers SRV for named ports', async () => {
    assert.deepEqual(await resolver.resolveSrv('_http._tcp.web.default.svc.cluster.local'), [
      { name: 'web.default.svc.cluster.local', port: 80, priority: 0, weight: 100 },
    ]);
    const db = await resolver.resolveSrv('_pg._tcp.db.data.svc.cluster.local');
    assert.deepEqual(db.map((s) => `${s.name}:${s.port}`).sort(), ['10-244-0-6.db.data.svc.cluster.local:15432', 'db-0.db.data.svc.cluster.local:15432']);
    const raw = await udp(encodeQuery(9, '_http._tcp.web.default.svc.cluster.local', RRType.SRV));
    assert.deepEqual(raw.additionals.map((r) => r.data), [{ kind: 'A', address: '10.96.0.20' }], 'target address as additional record');
  });

  it('answers pod names', async () => {
    assert.deepEqual(await resolver.resolve4('10-244-0-9.default.pod.cluster.local'), ['10.244.0.9']);
  });

  it('NXDOMAIN for unknown names in the domain, with AA and the SOA', async () => {
    await assert.rejects(resolver.resolve4('nope.default.svc.cluster.local'), { code: 'ENOTFOUND' });
    const m = await udp(encodeQuery(7, 'nope.default.svc.cluster.local', RRType.A));
    assert.equal(m.rcode, Rcode.NXDOMAIN);
    assert.equal(m.aa, true);
    assert.equal(m.qr, true);
    assert.equal(m.id, 7);
    assert.equal(m.authorities[0]?.type, RRType.SOA);
  });

  it('NOERROR without records for AAAA of a known name and for empty non-terminals', async () => {
    for (const [name, type] of [['web.default.svc.cluster.local', RRType.AAAA], ['default.svc.cluster.local', RRType.A]] as const) {
      const m = await udp(encodeQuery(8, name, type));
      assert.equal(m.rcode, Rcode.NOERROR, name);
      assert.equal(m.answers.length, 0);
      assert.equal(m.aa, true);
    }
  });

  it('REFUSED for names outside the cluster domain (no upstream)', async () => {
    const m = await udp(encodeQuery(3, 'example.com', RRType.A));
    assert.equal(m.rcode, Rcode.REFUSED);
    assert.equal(m.aa, false);
    await assert.rejects(resolver.resolve4('example.com'), { code: 'EREFUSED' });
  });

  it('answers the first of several questions, echoing the question as asked', async () => {
    const q = encodeMessage({
      id: 11, qr: false, opcode: 0, aa: false, tc: false, rd: true, ra: false, rcode: 0,
      questions: [{ name: 'Web.Default.svc.cluster.local', type: RRType.A, class: 1 }, { name: 'db.data.svc.cluster.local', type: RRType.A, class: 1 }],
      answers: [], authorities: [], additionals: [],
    });
    const m = await udp(q);
    assert.deepEqual(m.questions, [{ name: 'Web.Default.svc.cluster.local', type: RRType.A, class: 1 }]);
    assert.deepEqual(m.answers.map((a) => [a.name, a.data]), [['Web.Default.svc.cluster.local', { kind: 'A', address: '10.96.0.20' }]]);
    assert.equal(m.rd, true);
  });

  it('CNAME for ExternalName services', async () => {
    const m = await udp(encodeQuery(4, 'ext.default.svc.cluster.local', RRType.A));
    assert.deepEqual(m.answers.map((a) => a.data), [{ kind: 'CNAME', target: 'db.example.invalid' }]);
  });

  it('sets TC over UDP beyond 512 bytes; TCP (pipelined, fragmented) gets everything', async () => {
    const big = encodeQuery(5, 'many.default.svc.cluster.local', RRType.A);
    const m = await udp(big);
    assert.equal(m.tc, true);
    assert.equal(m.answers.length, 0);
    const edns = await udp(encodeQuery(6, 'many.default.svc.cluster.local', RRType.A, { ednsUdpSize: 4096 }));
    assert.equal(edns.tc, false, 'EDNS0 raises the UDP limit');
    assert.equal(edns.answers.length, 60);
    const [full, second] = await tcp([big, encodeQuery(12, 'web.default.svc.cluster.local', RRType.A)]);
    assert.equal(full.tc, false);
    assert.equal(full.answers.length, 60);
    assert.equal(second.id, 12);
    assert.equal(second.answers.length, 1);
  });

  it('NOTIMP for other opcodes and FORMERR for garbage', async () => {
    const q = encodeQuery(13, 'web.default.svc.cluster.local', RRType.A);
    q.writeUInt16BE(q.readUInt16BE(2) | (2 << 11), 2); // opcode STATUS
    assert.equal((await udp(q)).rcode, Rcode.NOTIMP);
    const garbage = Buffer.from([0, 14, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 40, 1, 2]);
    assert.equal((await udp(garbage)).rcode, Rcode.FORMERR);
  });

  it('sees updates', async () => {
    server.update([...services, { metadata: { name: 'late', namespace: 'default' }, spec: { clusterIP: '10.96.0.99' } }], endpoints);
    assert.deepEqual(await resolver.resolve4('late.default.svc.cluster.local'), ['10.96.0.99']);
    server.update(services, endpoints);
    await assert.rejects(resolver.resolve4('late.default.svc.cluster.local'), { code: 'ENOTFOUND' });
  });
});

describe('pod hostname/subdomain records', () => {
  let server: ClusterDNS;
  let resolver: Resolver;
  const ready = [{ type: 'Ready', status: 'True' }];
  const pod = (name: string, ip: string, spec: Pod['spec'], conditions = ready, namespace = 'data'): Pod =>
    ({ metadata: { name, namespace }, spec, status: { podIP: ip, phase: 'Running', conditions } });
  const pods: Pod[] = [
    pod('db-0', '10.244.0.5', { hostname: 'db-0', subdomain: 'db' }),
    pod('other', '10.244.0.8', { hostname: 'worker', subdomain: 'db' }),
    pod('starting', '10.244.0.9', { hostname: 'starting', subdomain: 'db' }, [{ type: 'Ready', status: 'False' }]),
    pod('nosvc', '10.244.0.10', { hostname: 'lost', subdomain: 'missing' }),
    pod('clusterip', '10.244.0.11', { hostname: 'w1', subdomain: 'web' }, ready, 'default'),
    pod('eager', '10.244.0.12', { hostname: 'eager', subdomain: 'pub' }, [{ type: 'Ready', status: 'False' }]),
  ];
  const withPub: Service[] = [...services, { metadata: { name: 'pub', namespace: 'data' }, spec: { clusterIP: 'None', publishNotReadyAddresses: true } }];

  before(async () => {
    server = await startClusterDNS({ listen: [{ host: '127.0.0.1', port: 0 }], domain: 'cluster.local' });
    server.update(withPub, endpoints, pods);
    resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`127.0.0.1:${server.addresses[0].port}`]);
  });
  after(async () => {
    await server.close();
  });

  it('answers <hostname>.<subdomain>.<ns>.svc for ready pods whose subdomain is a headless service', async () => {
    assert.deepEqual(await resolver.resolve4('worker.db.data.svc.cluster.local'), ['10.244.0.8']);
    assert.deepEqual(await resolver.resolve4('db-0.db.data.svc.cluster.local'), ['10.244.0.5'], 'same record as the endpoint hostname, once');
    assert.deepEqual(await resolver.resolve4('eager.pub.data.svc.cluster.local'), ['10.244.0.12'], 'publishNotReadyAddresses');
  });

  it('has no record for unready pods, a missing service, or a ClusterIP service', async () => {
    for (const name of ['starting.db.data', 'lost.missing.data', 'w1.web.default']) {
      await assert.rejects(resolver.resolve4(`${name}.svc.cluster.local`), { code: 'ENOTFOUND' }, name);
    }
  });

  it('follows pod changes', async () => {
    server.update(withPub, endpoints, pods.filter((p) => p.metadata.name !== 'other'));
    await assert.rejects(resolver.resolve4('worker.db.data.svc.cluster.local'), { code: 'ENOTFOUND' });
  });
});

describe('podResolvConf', () => {
  it('is the ClusterFirst resolv.conf', () => {
    assert.equal(podResolvConf('shop', 'cluster.local'), 'search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n');
  });
});
