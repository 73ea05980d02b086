// The RBAC authorizer: an in-memory view of Roles, ClusterRoles and their bindings, kept
// current by a store watch (and by this server's own RBAC writes, so a binding works on the
// very next request), answering "may this user do this?" like kube-apiserver's RBAC mode.
import type { Store, CancelWatch, StoreEvent } from '../../store/types.js';
import type { UserInfo } from '../authn.js';
import type { Attributes, Decision } from '../authz.js';
import { getPath, type Json } from '../util.js';
import { appliesTo, roleRefOf, ruleAllows, rulesOf, subjectsOf, type PolicyRule } from './rules.js';

const GROUP = 'rbac.authorization.k8s.io';
const PREFIX = {
  roles: `/registry/roles.${GROUP}/`,
  rolebindings: `/registry/rolebindings.${GROUP}/`,
  clusterroles: `/registry/clusterroles.${GROUP}/`,
  clusterrolebindings: `/registry/clusterrolebindings.${GROUP}/`,
};
type Table = keyof typeof PREFIX;

export const SYSTEM_MASTERS = 'system:masters';

function rv(obj: Json): number {
  return Number(getPath(obj, 'metadata.resourceVersion') ?? 0);
}

export class RbacAuthorizer {
  private readonly tables: Record<Table, Map<string, Json>> = { roles: new Map(), rolebindings: new Map(), clusterroles: new Map(), clusterrolebindings: new Map() };
  /** Last revision seen per key (deletions included), so late events never move a key back. */
  private readonly seen = new Map<string, number>();
  private cancels: CancelWatch[] = [];
  private stopped = false;

  constructor(private readonly store: Store) {}

  async start(): Promise<void> {
    await Promise.all((Object.keys(PREFIX) as Table[]).map((t) => this.sync(t)));
  }

  stop(): void {
    this.stopped = true;
    for (const c of this.cancels) c();
    this.cancels = [];
  }

  /** List then watch one table; a compacted or failed watch relists. */
  private async sync(t: Table): Promise<void> {
    const { items, revision } = await this.store.list(PREFIX[t]);
    const live = new Set<string>();
    for (const o of items) {
      const key = this.keyOf(t, o);
      live.add(key);
      this.apply(key, o, rv(o));
    }
    for (const key of [...this.tables[t].keys()]) if (!live.has(key)) this.apply(key, undefined, revision);
    try {
      const cancel = await this.store.watch(PREFIX[t], revision, (ev: StoreEvent) => {
        this.apply(ev.key, ev.type === 'DELETED' ? undefined : ev.object, ev.revision);
      });
      if (this.stopped) cancel(); else this.cancels.push(cancel);
    } catch (e) {
      if (this.stopped) return;
      console.error(`apiserver: rbac: watching ${t}: ${(e as Error).message}; relisting`);
      setTimeout(() => { if (!this.stopped) void this.sync(t).catch(() => {}); }, 1000).unref();
    }
  }

  private keyOf(t: Table, o: Json): string {
    const ns = getPath(o, 'metadata.namespace');
    const name = String(getPath(o, 'metadata.name'));
    return t === 'roles' || t === 'rolebindings' ? `${PREFIX[t]}${String(ns)}/${name}` : `${PREFIX[t]}${name}`;
  }

  /** Records a change to an RBAC object at a store key; older news than what we have is ignored. */
  apply(key: string, obj: Json | undefined, revision: number): void {
    const t = (Object.keys(PREFIX) as Table[]).find((x) => key.startsWith(PREFIX[x]));
    if (!t) return;
    if ((this.seen.get(key) ?? 0) > revision) return;
    this.seen.set(key, revision);
    if (obj) this.tables[t].set(key, obj); else this.tables[t].delete(key);
  }

  private role(kind: string, namespace: string, name: string): Json | undefined {
    if (kind === 'ClusterRole') return this.tables.clusterroles.get(`${PREFIX.clusterroles}${name}`);
    if (kind === 'Role') return this.tables.roles.get(`${PREFIX.roles}${namespace}/${name}`);
    return undefined;
  }

  /** The rules of a Role (in namespace) or ClusterRole; undefined when it does not exist. */
  roleRules(kind: string, namespace: string, name: string): PolicyRule[] | undefined {
    const r = this.role(kind, namespace, name);
    return r ? rulesOf(r) : undefined;
  }

  /** Every rule granted to the user, with where it came from, for the given namespace ('' = cluster scope only). */
  *rulesFor(user: UserInfo, namespace: string): Generator<{ rule: PolicyRule; source: string }> {
    for (const b of this.tables.clusterrolebindings.values()) {
      const ref = roleRefOf(b);
      if (!ref || ref.kind !== 'ClusterRole' || !subjectsOf(b).some((s) => appliesTo(user, s, ''))) continue;
      const source = `ClusterRoleBinding "${String(getPath(b, 'metadata.name'))}" of ClusterRole "${ref.name}"`;
      for (const rule of rulesOf(this.role('ClusterRole', '', ref.name))) yield { rule, source };
    }
    if (!namespace) return;
    const prefix = `${PREFIX.rolebindings}${namespace}/`;
    for (const [key, b] of this.tables.rolebindings) {
      if (!key.startsWith(prefix)) continue;
      const ref = roleRefOf(b);
      if (!ref || !subjectsOf(b).some((s) => appliesTo(user, s, namespace))) continue;
      const source = `RoleBinding "${String(getPath(b, 'metadata.name'))}/${namespace}" of ${ref.kind} "${ref.name}"`;
      for (const rule of rulesOf(this.role(ref.kind, namespace, ref.name))) yield { rule, source };
    }
  }

  authorize(user: UserInfo, a: Attributes): Decision {
    if (user.groups.includes(SYSTEM_MASTERS)) return { allowed: true, reason: `allowed by group "${SYSTEM_MASTERS}"` };
    for (const { rule, source } of this.rulesFor(user, a.resourceRequest ? a.namespace : '')) {
      if (ruleAllows(a, rule)) return { allowed: true, reason: `RBAC: allowed by ${source} to User "${user.username}"` };
    }
    return { allowed: false };
  }
}
