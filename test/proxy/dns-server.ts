// Test scaffolding: a tiny authoritative DNS server over UDP on loopback answering A
// queries from a map the test changes, so a STRICT_DNS cluster can be re-resolved for real.
import dgram from 'node:dgram';

export class TestDnsServer {
  private readonly socket = dgram.createSocket('udp4');
  readonly records = new Map<string, string[]>();
  queries = 0;
  port = 0;

  async listen(): Promise<number> {
    this.socket.on('message', (msg, rinfo) => this.answer(msg, rinfo));
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', () => resolve()));
    this.port = this.socket.address().port;
    return this.port;
  }

  private answer(q: Buffer, rinfo: dgram.RemoteInfo): void {
    if (q.length < 12) return;
    this.queries++;
    // The question: labels up to the zero byte, then type and class.
    const labels: string[] = [];
    let i = 12;
    while (i < q.length && q[i] !== 0) { labels.push(q.subarray(i + 1, i + 1 + q[i]).toString()); i += 1 + q[i]; }
    const qEnd = i + 5;
    const qtype = q.readUInt16BE(i + 1);
    const name = labels.join('.').toLowerCase();
    const addrs = this.records.get(name);
    const answers = qtype === 1 && addrs ? addrs : [];
    const head = Buffer.alloc(12);
    q.copy(head, 0, 0, 2);
    head.writeUInt16BE(addrs ? 0x8180 : 0x8183, 2); // response, recursion available; NXDOMAIN when unknown
    head.writeUInt16BE(1, 4);
    head.writeUInt16BE(answers.length, 6);
    const rrs = answers.map((ip) => {
      const rr = Buffer.alloc(16);
      rr.writeUInt16BE(0xc00c, 0); // pointer to the question's name
      rr.writeUInt16BE(1, 2);
      rr.writeUInt16BE(1, 4);
      rr.writeUInt32BE(1, 6);
      rr.writeUInt16BE(4, 10);
      ip.split('.').forEach((o, k) => rr.writeUInt8(Number(o), 12 + k));
      return rr;
    });
    this.socket.send(Buffer.concat([head, q.subarray(12, qEnd), ...rrs]), rinfo.port, rinfo.address);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
