/** RFC 1035 message codec (plus the EDNS0 OPT pseudo-record, RFC 6891). */

export const RRType = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, ANY: 255 } as const;
export const RRClass = { IN: 1, ANY: 255 } as const;
export const Rcode = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export const Opcode = { QUERY: 0 } as const;

export interface Question {
  name: string;
  type: number;
  class: number;
}

export type RecordData =
  | { kind: 'A'; address: string }
  | { kind: 'CNAME'; target: string }
  | { kind: 'SRV'; priority: number; weight: number; port: number; target: string }
  | { kind: 'SOA'; mname: string; rname: string; serial: number; refresh: number; retry: number; expire: number; minimum: number }
  | { kind: 'raw'; bytes: Buffer };

export interface ResourceRecord {
  name: string;
  type: number;
  /** For OPT this is the requestor's UDP payload size. */
  class: number;
  /** For OPT this holds extended rcode, version and flags. */
  ttl: number;
  data: RecordData;
}

export interface DnsMessage {
  id: number;
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  rcode: number;
  questions: Question[];
  answers: ResourceRecord[];
  authorities: ResourceRecord[];
  additionals: ResourceRecord[];
}

export class DnsFormatError extends Error {}

// ---------- decoding ----------

class Reader {
  offset = 0;
  constructor(readonly buf: Buffer) {}
  need(n: number): void {
    if (this.offset + n > this.buf.length) throw new DnsFormatError(`message truncated at offset ${this.offset}`);
  }
  u8(): number {
    this.need(1);
    return this.buf.readUInt8(this.offset++);
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.offset);
    this.offset += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return b;
  }
  /** A possibly compressed domain name; returned without the trailing dot ('' is the root). */
  name(): string {
    const labels: string[] = [];
    let pos = this.offset;
    let jumped = false;
    let hops = 0;
    let length = 0;
    for (;;) {
      if (pos >= this.buf.length) throw new DnsFormatError(`name runs past the end at offset ${pos}`);
      const len = this.buf[pos];
      if ((len & 0xc0) === 0xc0) {
        if (pos + 1 >= this.buf.length) throw new DnsFormatError(`compression pointer truncated at offset ${pos}`);
        if (++hops > 64) throw new DnsFormatError('compression pointer loop');
        const target = ((len & 0x3f) << 8) | this.buf[pos + 1];
        if (!jumped) this.offset = pos + 2;
        jumped = true;
        pos = target;
        continue;
      }
      if ((len & 0xc0) !== 0) throw new DnsFormatError(`unsupported label type 0x${len.toString(16)} at offset ${pos}`);
      if (len === 0) {
        if (!jumped) this.offset = pos + 1;
        break;
      }
      if (pos + 1 + len > this.buf.length) throw new DnsFormatError(`label runs past the end at offset ${pos}`);
      length += len + 1;
      if (length > 255) throw new DnsFormatError('name longer than 255 octets');
      labels.push(this.buf.toString('latin1', pos + 1, pos + 1 + len));
      pos += 1 + len;
    }
    return labels.join('.');
  }
}

function decodeRecord(r: Reader): ResourceRecord {
  const name = r.name();
  const type = r.u16();
  const klass = r.u16();
  const ttl = r.u32();
  const rdlength = r.u16();
  r.need(rdlength);
  const end = r.offset + rdlength;
  let data: RecordData;
  if (type === RRType.A && rdlength === 4) {
    data = { kind: 'A', address: [...r.bytes(4)].join('.') };
  } else if (type === RRType.CNAME) {
    data = { kind: 'CNAME', target: r.name() };
  } else if (type === RRType.SRV) {
    data = { kind: 'SRV', priority: r.u16(), weight: r.u16(), port: r.u16(), target: r.name() };
  } else if (type === RRType.SOA) {
    data = { kind: 'SOA', mname: r.name(), rname: r.name(), serial: r.u32(), refresh: r.u32(), retry: r.u32(), expire: r.u32(), minimum: r.u32() };
  } else {
    data = { kind: 'raw', bytes: Buffer.from(r.bytes(rdlength)) };
  }
  if (r.offset !== end) throw new DnsFormatError(`record ${name} type ${type}: rdata length ${rdlength} does not match its content`);
  return { name, type, class: klass, ttl, data };
}

export function decodeMessage(buf: Buffer): DnsMessage {
  const r = new Reader(buf);
  const id = r.u16();
  const flags = r.u16();
  const counts = [r.u16(), r.u16(), r.u16(), r.u16()];
  const questions: Question[] = [];
  for (let i = 0; i < counts[0]; i++) questions.push({ name: r.name(), type: r.u16(), class: r.u16() });
  const sections: ResourceRecord[][] = [[], [], []];
  for (let s = 0; s < 3; s++) for (let i = 0; i < counts[s + 1]; i++) sections[s].push(decodeRecord(r));
  return {
    id,
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0,
    ra: (flags & 0x0080) !== 0,
    rcode: flags & 0xf,
    questions,
    answers: sections[0],
    authorities: sections[1],
    additionals: sections[2],
  };
}

// ---------- encoding ----------

class Writer {
  private buf = Buffer.alloc(512);
  length = 0;
  /** name suffix -> offset, for compression (RFC 1035 4.1.4). */
  private readonly names = new Map<string, number>();

  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf.writeUInt8(v, this.length++);
  }
  u16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16BE(v & 0xffff, this.length);
    this.length += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.length);
    this.length += 4;
  }
  bytes(b: Buffer): void {
    this.ensure(b.length);
    b.copy(this.buf, this.length);
    this.length += b.length;
  }
  setU16(at: number, v: number): void {
    this.buf.writeUInt16BE(v & 0xffff, at);
  }
  name(name: string): void {
    const labels = name === '' || name === '.' ? [] : name.replace(/\.$/, '').split('.');
    let total = 1;
    for (let i = 0; i < labels.length; i++) {
      // Exact-case match: compression must not change how a name is spelled.
      const suffix = labels.slice(i).join('.');
      const known = this.names.get(suffix);
      if (known !== undefined) {
        this.u16(0xc000 | known);
        return;
      }
      const label = Buffer.from(labels[i], 'latin1');
      if (label.length === 0 || label.length > 63) throw new DnsFormatError(`name "${name}": label "${labels[i]}" must be 1-63 octets`);
      total += label.length + 1;
      if (total > 255) throw new DnsFormatError(`name "${name}": longer than 255 octets`);
      if (this.length < 0x4000) this.names.set(suffix, this.length);
      this.u8(label.length);
      this.bytes(label);
    }
    this.u8(0);
  }
  result(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.length));
  }
}

function encodeIpv4(address: string): Buffer {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new DnsFormatError(`A record: "${address}" is not an IPv4 address`);
  }
  return Buffer.from(parts);
}

function encodeRecord(w: Writer, rr: ResourceRecord): void {
  w.name(rr.name);
  w.u16(rr.type);
  w.u16(rr.class);
  w.u32(rr.ttl);
  const lengthAt = w.length;
  w.u16(0);
  const start = w.length;
  const d = rr.data;
  switch (d.kind) {
    case 'A':
      w.bytes(encodeIpv4(d.address));
      break;
    case 'CNAME':
      w.name(d.target);
      break;
    case 'SRV':
      w.u16(d.priority);
      w.u16(d.weight);
      w.u16(d.port);
      // RFC 2782: the SRV target must not be compressed.
      for (const label of d.target === '' ? [] : d.target.split('.')) {
        const b = Buffer.from(label, 'latin1');
        w.u8(b.length);
        w.bytes(b);
      }
      w.u8(0);
      break;
    case 'SOA':
      w.name(d.mname);
      w.name(d.rname);
      for (const v of [d.serial, d.refresh, d.retry, d.expire, d.minimum]) w.u32(v);
      break;
    case 'raw':
      w.bytes(d.bytes);
      break;
  }
  w.setU16(lengthAt, w.length - start);
}

export function encodeMessage(m: DnsMessage): Buffer {
  const w = new Writer();
  w.u16(m.id);
  w.u16(
    (m.qr ? 0x8000 : 0) |
      ((m.opcode & 0xf) << 11) |
      (m.aa ? 0x0400 : 0) |
      (m.tc ? 0x0200 : 0) |
      (m.rd ? 0x0100 : 0) |
      (m.ra ? 0x0080 : 0) |
      (m.rcode & 0xf),
  );
  for (const n of [m.questions.length, m.answers.length, m.authorities.length, m.additionals.length]) w.u16(n);
  for (const q of m.questions) {
    w.name(q.name);
    w.u16(q.type);
    w.u16(q.class);
  }
  for (const rr of [...m.answers, ...m.authorities, ...m.additionals]) encodeRecord(w, rr);
  return w.result();
}

/** A query message, for clients and tests. */
export function encodeQuery(id: number, name: string, type: number, opts: { rd?: boolean; ednsUdpSize?: number } = {}): Buffer {
  return encodeMessage({
    id,
    qr: false,
    opcode: Opcode.QUERY,
    aa: false,
    tc: false,
    rd: opts.rd ?? true,
    ra: false,
    rcode: 0,
    questions: [{ name, type, class: RRClass.IN }],
    answers: [],
    authorities: [],
    additionals: opts.ednsUdpSize ? [optRecord(opts.ednsUdpSize)] : [],
  });
}

export function optRecord(udpSize: number): ResourceRecord {
  return { name: '', type: RRType.OPT, class: udpSize, ttl: 0, data: { kind: 'raw', bytes: Buffer.alloc(0) } };
}
