import dgram from 'node:dgram';
import net from 'node:net';
import { decodeMessage, encodeMessage, optRecord, DnsFormatError, Opcode, Rcode, RRClass, RRType, type DnsMessage } from './dns-wire.js';
import { ClusterZone } from './dns-zone.js';
import type { Collection, Endpoints, Pod, Service } from './kube-types.js';

export interface ListenAddress {
  host: string;
  port: number; // 0 picks a free port (the same one for UDP and TCP)
}

export interface ClusterDNSOptions {
  listen: ListenAddress[];
  domain: string; // cluster.local
  ttl?: number;
}

export interface ClusterDNS {
  /** Bound addresses (UDP and TCP share the port). */
  readonly addresses: ListenAddress[];
  /** Replaces the whole zone; pods add `<hostname>.<subdomain>.<ns>.svc` records. */
  update(services: Collection<Service>, endpoints: Collection<Endpoints>, pods?: Collection<Pod>): void;
  close(): Promise<void>;
}

/** Our answer size for EDNS clients; 1232 avoids IP fragmentation (DNS flag day 2020). */
const EDNS_UDP_SIZE = 1232;
const UDP_PLAIN_LIMIT = 512;
const TCP_IDLE_MS = 30_000;

/** The resolv.conf a pod gets (the kubelet's ClusterFirst policy). */
export function podResolvConf(namespace: string, domain: string, nameserverIP = '10.96.0.10'): string {
  return `search ${namespace}.svc.${domain} svc.${domain} ${domain}\nnameserver ${nameserverIP}\noptions ndots:5\n`;
}

/**
 * Answers one wire-format query. Returns undefined for input that deserves no answer
 * (shorter than a header, or itself a response). UDP answers are capped at 512 bytes
 * (or the EDNS0 size, at most 1232) and truncated with TC beyond that.
 */
export function answerQuery(zone: ClusterZone, query: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined {
  if (query.length < 12) return undefined;
  if ((query.readUInt16BE(2) & 0x8000) !== 0) return undefined;
  const id = query.readUInt16BE(0);
  const reply = (m: Partial<DnsMessage>): DnsMessage => ({
    id,
    qr: true,
    opcode: (query.readUInt16BE(2) >> 11) & 0xf,
    aa: false,
    tc: false,
    rd: (query.readUInt16BE(2) & 0x0100) !== 0,
    ra: false, // authoritative only, no recursion
    rcode: Rcode.NOERROR,
    questions: [],
    answers: [],
    authorities: [],
    additionals: [],
    ...m,
  });

  let q: DnsMessage;
  try {
    q = decodeMessage(query);
  } catch (err) {
    if (err instanceof DnsFormatError) return encodeMessage(reply({ rcode: Rcode.FORMERR }));
    throw err;
  }
  if (q.opcode !== Opcode.QUERY) return encodeMessage(reply({ rcode: Rcode.NOTIMP }));
  if (q.questions.length === 0) return encodeMessage(reply({ rcode: Rcode.FORMERR }));

  // Several questions in one message are not used in practice; answer the first, echo only it.
  const question = q.questions[0];
  const opt = q.additionals.find((r) => r.type === RRType.OPT);
  const extra = opt ? [optRecord(EDNS_UDP_SIZE)] : [];
  const limit = transport === 'tcp' ? 65535 : opt ? Math.max(UDP_PLAIN_LIMIT, Math.min(opt.class, EDNS_UDP_SIZE)) : UDP_PLAIN_LIMIT;

  if (question.class !== RRClass.IN && question.class !== RRClass.ANY) {
    return encodeMessage(reply({ rcode: Rcode.REFUSED, questions: [question], additionals: extra }));
  }
  const result = zone.lookup(question.name, question.type);
  const authoritative = result.rcode !== Rcode.REFUSED;
  const full = reply({
    aa: authoritative,
    rcode: result.rcode,
    questions: [question],
    answers: result.answers,
    authorities: result.authorities,
    additionals: [...result.additionals, ...extra],
  });
  const bytes = encodeMessage(full);
  if (bytes.length <= limit) return bytes;
  // Too big for this transport: drop the records and set TC so the client retries over TCP.
  return encodeMessage({ ...full, tc: true, answers: [], authorities: [], additionals: extra });
}

async function bindUdp(host: string, port: number, onMessage: (msg: Buffer, rinfo: dgram.RemoteInfo, sock: dgram.Socket) => void): Promise<dgram.Socket> {
  const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  sock.on('message', (msg, rinfo) => onMessage(msg, rinfo, sock));
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind({ address: host, port, exclusive: true }, () => {
      sock.off('error', reject);
      resolve();
    });
  });
  sock.on('error', (err) => console.error(`cluster dns udp ${host}:${port}: ${err.message}`));
  return sock;
}

async function listenTcp(server: net.Server, host: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Starts the cluster DNS server on each listen address, UDP and TCP. */
export async function startClusterDNS(opts: ClusterDNSOptions): Promise<ClusterDNS> {
  const zone = new ClusterZone(opts.domain, opts.ttl);
  const udpSockets: dgram.Socket[] = [];
  const tcpServers: net.Server[] = [];
  const connections = new Set<net.Socket>();
  const addresses: ListenAddress[] = [];

  const onUdp = (msg: Buffer, rinfo: dgram.RemoteInfo, sock: dgram.Socket): void => {
    let out: Buffer | undefined;
    try {
      out = answerQuery(zone, msg, 'udp');
    } catch (err) {
      console.error(`cluster dns: query from ${rinfo.address}:${rinfo.port}: ${(err as Error).message}`);
      return;
    }
    if (out) sock.send(out, rinfo.port, rinfo.address);
  };

  const onTcp = (conn: net.Socket): void => {
    connections.add(conn);
    conn.setTimeout(TCP_IDLE_MS, () => conn.destroy());
    conn.on('close', () => connections.delete(conn));
    conn.on('error', () => conn.destroy());
    let pending: Buffer = Buffer.alloc(0);
    conn.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      // RFC 1035 4.2.2: each message is prefixed with a two-byte length; several may be pipelined.
      while (pending.length >= 2) {
        const len = pending.readUInt16BE(0);
        if (pending.length < 2 + len) break;
        const msg = pending.subarray(2, 2 + len);
        pending = pending.subarray(2 + len);
        let out: Buffer | undefined;
        try {
          out = answerQuery(zone, Buffer.from(msg), 'tcp');
        } catch (err) {
          console.error(`cluster dns: tcp query from ${conn.remoteAddress}: ${(err as Error).message}`);
          conn.destroy();
          return;
        }
        if (!out) continue;
        const prefix = Buffer.alloc(2);
        prefix.writeUInt16BE(out.length);
        conn.write(Buffer.concat([prefix, out]));
      }
    });
  };

  const closeAll = async (): Promise<void> => {
    for (const c of connections) c.destroy();
    await Promise.all([
      ...udpSockets.map((s) => new Promise<void>((res) => s.close(() => res()))),
      ...tcpServers.map((s) => new Promise<void>((res) => s.close(() => res()))),
    ]);
  };

  try {
    for (const l of opts.listen) {
      // With port 0, UDP picks the port and TCP must get the same one; retry on a clash.
      for (let attempt = 0; ; attempt++) {
        const udp = await bindUdp(l.host, l.port, onUdp);
        const port = udp.address().port;
        const tcp = net.createServer(onTcp);
        try {
          await listenTcp(tcp, l.host, port);
        } catch (err) {
          await new Promise<void>((res) => udp.close(() => res()));
          if (l.port === 0 && (err as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < 20) continue;
          throw new Error(`cluster dns: listen tcp ${l.host}:${port}: ${(err as Error).message}`);
        }
        udpSockets.push(udp);
        tcpServers.push(tcp);
        addresses.push({ host: l.host, port });
        break;
      }
    }
  } catch (err) {
    await closeAll();
    throw err;
  }

  return {
    addresses,
    update: (services, endpoints, pods) => zone.update(services, endpoints, pods),
    close: closeAll,
  };
}
