// Host-local IPAM for the node's pod CIDR. Allocations are keyed by pod UID and persisted
// (write to a temp file, then rename) before an address is handed out, so a restarted kubelet
// never gives a live address to a second pod, and a recreated pod keeps its address.
import fs from 'node:fs';
import path from 'node:path';
import { formatIpv4, parseCidr } from '../network/cidr.js';

interface IpamFile { cidr: string; allocations: Record<string, string> } // ip -> pod UID

export class Ipam {
  private allocations = new Map<string, string>(); // ip -> uid
  private readonly first: number;
  private readonly last: number;
  private readonly reserved: Set<string>;

  constructor(private readonly file: string, private readonly cidr: string, gatewayIP: string) {
    const c = parseCidr(cidr, 'nodePodCIDR');
    const size = 2 ** (32 - c.prefixLength);
    // Network and broadcast addresses are never handed out; nor is the gateway.
    this.first = c.network + 1;
    this.last = c.network + size - 2;
    this.reserved = new Set([gatewayIP]);
    this.load();
  }

  private load(): void {
    let parsed: IpamFile | undefined;
    try { parsed = JSON.parse(fs.readFileSync(this.file, 'utf8')) as IpamFile; } catch { parsed = undefined; }
    if (!parsed || parsed.cidr !== this.cidr) return; // a different range: old allocations do not apply
    for (const [ip, uid] of Object.entries(parsed.allocations ?? {})) this.allocations.set(ip, uid);
  }

  private save(): void {
    const body: IpamFile = { cidr: this.cidr, allocations: Object.fromEntries(this.allocations) };
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(body, null, 2));
    fs.renameSync(tmp, this.file);
  }

  /** The pod's address: its existing allocation, else the lowest free one. */
  allocate(uid: string): string {
    for (const [ip, owner] of this.allocations) if (owner === uid) return ip;
    for (let n = this.first; n <= this.last; n++) {
      const ip = formatIpv4(n);
      if (this.reserved.has(ip) || this.allocations.has(ip)) continue;
      this.allocations.set(ip, uid);
      this.save();
      return ip;
    }
    throw new Error(`IPAM ${this.cidr}: no free address for pod ${uid}`);
  }

  release(uid: string): void {
    let changed = false;
    for (const [ip, owner] of [...this.allocations]) {
      if (owner === uid) { this.allocations.delete(ip); changed = true; }
    }
    if (changed) this.save();
  }

  /** Releases every allocation whose pod is not in `live` (used after the first pod list). */
  retainOnly(live: Set<string>): void {
    let changed = false;
    for (const [ip, owner] of [...this.allocations]) {
      if (!live.has(owner)) { this.allocations.delete(ip); changed = true; }
    }
    if (changed) this.save();
  }

  allocated(): Map<string, string> { return new Map(this.allocations); }
}
