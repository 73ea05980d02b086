// The type registry: one entry per served resource. The generic REST code (rest/*.ts)
// does everything else; a kind contributes only its strategy, like Kubernetes'
// generic registry Store with its RESTCreateStrategy/RESTUpdateStrategy.
import type { StatusCause } from '../../../api/kube/types.js';
import type { Json } from '../util.js';
import type { UserInfo } from '../authn.js';

export interface OpContext {
  user: UserInfo;
  namespace?: string;
  dryRun: boolean;
}

export interface TableColumn { name: string; type: string; format?: string; description?: string; priority?: number }

export interface TableConvertor {
  columns: TableColumn[];
  cells(obj: Json): unknown[];
}

export interface Strategy {
  /** Schema defaults, applied to every incoming object (create and update), like decode-time defaulting. */
  defaults?(obj: Json): void;
  /** Read-time additions (CRD schema defaults); must not modify its argument (store objects are shared). */
  onRead?(obj: Json): Json;
  /** Built-in mutating admission (e.g. the ServiceAccount plugin for pods); runs before webhooks. */
  admit?(obj: Json, ctx: OpContext, operation: 'CREATE' | 'UPDATE'): void | Promise<void>;
  /** Server-set fields on create (status, allocations not needing rollback). */
  prepareForCreate?(obj: Json, ctx: OpContext): void;
  /** Server-set fields on update: e.g. keep immutable fields from old. */
  prepareForUpdate?(obj: Json, old: Json, ctx: OpContext): void;
  validate?(obj: Json, ctx: OpContext): StatusCause[] | Promise<StatusCause[]>;
  validateUpdate?(obj: Json, old: Json, ctx: OpContext): StatusCause[] | Promise<StatusCause[]>;
  /** Reserves resources (e.g. a ClusterIP) right before storing; returns the rollback. */
  reserve?(obj: Json, ctx: OpContext): Promise<() => void> | (() => void);
  afterCreate?(obj: Json): void | Promise<void>;
  afterUpdate?(obj: Json, old: Json): void | Promise<void>;
  afterDelete?(obj: Json): void | Promise<void>;
  /** Graceful deletion: seconds to wait before removal; 0 or undefined = remove now. */
  gracePeriod?(obj: Json, requested: number | undefined): number | undefined;
  /** Create-only, never stored kinds (TokenReview): computes the response object. */
  virtualCreate?(obj: Json, ctx: OpContext): Promise<Json>;
  /** Extra field-selector fields (metadata.name and metadata.namespace are always there). */
  fields?(obj: Json): Record<string, string | undefined>;
}

export interface ScaleSubresource {
  specReplicasPath: string; // ".spec.replicas"
  statusReplicasPath: string;
  labelSelectorPath?: string;
}

export interface KindInfo {
  group: string;
  /** The versions served, preferred first; objects are stored once, as storageVersion. */
  versions: string[];
  storageVersion: string;
  resource: string;
  kind: string;
  listKind: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  status: boolean;
  scale?: ScaleSubresource;
  /** Extra subresources served by special handlers (binding, token, finalize, log). */
  extraSubresources?: { name: string; kind: string; group?: string; version?: string; verbs: string[] }[];
  verbs: string[];
  strategy: Strategy;
  table?: TableConvertor;
  /** Set for CustomResourceDefinition-backed kinds. */
  crd?: { name: string; schemas: Record<string, Json | undefined> };
}

export const ALL_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

export function apiVersionFor(k: KindInfo, version: string): string {
  return k.group ? `${k.group}/${version}` : version;
}

/** The store key prefix of a kind ("/registry/pods/" or "/registry/deployments.apps/"). */
export function storePrefix(k: { group: string; resource: string }): string {
  return `/registry/${k.group ? `${k.resource}.${k.group}` : k.resource}/`;
}

export function storeKey(k: KindInfo, namespace: string | undefined, name: string): string {
  return k.namespaced ? `${storePrefix(k)}${namespace}/${name}` : `${storePrefix(k)}${name}`;
}
