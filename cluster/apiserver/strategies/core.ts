// core/v1 kinds other than pods and services.
import type { StatusCause } from '../../../api/kube/types.js';
import { fieldInvalid, fieldRequired } from '../errors.js';
import { child, childArray, getPath, isObj, str, type Json } from '../util.js';
import type { KindInfo } from '../registry/types.js';
import { age, col, kind, nameColumn, validateDnsLabel } from './common.js';

export const namespacesKind: KindInfo = kind({
  group: '', version: 'v1', resource: 'namespaces', kind: 'Namespace', namespaced: false, shortNames: ['ns'], status: true,
  extraSubresources: [{ name: 'finalize', kind: 'Namespace', verbs: ['update'] }],
  strategy: {
    defaults(ns) {
      const name = str(getPath(ns, 'metadata.name'));
      // Kubernetes labels every namespace with its name, so namespaceSelectors can pick it.
      if (name) child(child(ns, 'metadata'), 'labels')['kubernetes.io/metadata.name'] = name;
    },
    prepareForCreate(ns) {
      child(ns, 'spec').finalizers = ['kubernetes'];
      ns.status = { phase: 'Active' };
    },
    prepareForUpdate(ns, old) {
      // spec.finalizers changes only through the finalize subresource.
      child(ns, 'spec').finalizers = getPath(old, 'spec.finalizers');
    },
    validate(ns) { return validateDnsLabel('metadata.name', getPath(ns, 'metadata.name')); },
    fields(ns) { return { 'status.phase': str(getPath(ns, 'status.phase')) }; },
  },
  table: {
    columns: [nameColumn, col('Status'), col('Age')],
    cells: (ns) => [getPath(ns, 'metadata.name'), getPath(ns, 'status.phase') ?? 'Active', age(ns)],
  },
});

const SERVICE_ACCOUNT_TOKEN_TYPE = 'kubernetes.io/service-account-token';
const SA_NAME_ANNOTATION = 'kubernetes.io/service-account.name';

const secretsKind = kind({
  group: '', version: 'v1', resource: 'secrets', kind: 'Secret',
  strategy: {
    defaults(s) {
      s.type ??= 'Opaque';
      // stringData is a write-only convenience folded into data.
      if (isObj(s.stringData)) {
        const data = child(s, 'data');
        for (const [k, v] of Object.entries(s.stringData)) data[k] = Buffer.from(String(v)).toString('base64');
        delete s.stringData;
      }
    },
    validate(s) {
      const errs: StatusCause[] = [];
      if (isObj(s.data)) {
        for (const [k, v] of Object.entries(s.data)) {
          if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) errs.push(fieldInvalid(`data[${k}]`, '<value omitted>', 'must be base64 encoded'));
        }
      }
      // The token controller needs to know whose token to write.
      if (s.type === SERVICE_ACCOUNT_TOKEN_TYPE) {
        const annotations = getPath(s, 'metadata.annotations');
        if (!isObj(annotations) || !str(annotations[SA_NAME_ANNOTATION])) errs.push(fieldRequired(`metadata.annotations[${SA_NAME_ANNOTATION}]`));
      }
      return errs;
    },
    fields(s) { return { type: str(s.type) }; },
  },
  table: {
    columns: [nameColumn, col('Type'), col('Data'), col('Age')],
    cells: (s) => [getPath(s, 'metadata.name'), s.type, String(isObj(s.data) ? Object.keys(s.data).length : 0), age(s)],
  },
});

const nodesKind = kind({
  group: '', version: 'v1', resource: 'nodes', kind: 'Node', namespaced: false, shortNames: ['no'], status: true,
  strategy: {
    fields(n) { return { 'spec.unschedulable': String(getPath(n, 'spec.unschedulable') === true) }; },
  },
  table: {
    columns: [nameColumn, col('Status'), col('Roles'), col('Age'), col('Version'), col('Internal-IP', 1)],
    cells(n) {
      const ready = childArray(isObj(n.status) ? n.status : {}, 'conditions').find((c) => isObj(c) && c.type === 'Ready');
      const status = isObj(ready) && ready.status === 'True' ? 'Ready' : 'NotReady';
      const roles = Object.keys(isObj(getPath(n, 'metadata.labels')) ? getPath(n, 'metadata.labels') as Json : {})
        .filter((l) => l.startsWith('node-role.kubernetes.io/')).map((l) => l.slice('node-role.kubernetes.io/'.length));
      const addr = childArray(isObj(n.status) ? n.status : {}, 'addresses').find((a) => isObj(a) && a.type === 'InternalIP');
      return [getPath(n, 'metadata.name'), getPath(n, 'spec.unschedulable') ? `${status},SchedulingDisabled` : status,
        roles.join(',') || '<none>', age(n), getPath(n, 'status.nodeInfo.kubeletVersion') ?? '', isObj(addr) ? addr.address : '<none>'];
    },
  },
});

const eventsKind = kind({
  group: '', version: 'v1', resource: 'events', kind: 'Event', shortNames: ['ev'],
  strategy: {
    fields(e) {
      const f: Record<string, string | undefined> = {};
      for (const k of ['kind', 'namespace', 'name', 'uid', 'apiVersion', 'resourceVersion', 'fieldPath']) f[`involvedObject.${k}`] = str(getPath(e, `involvedObject.${k}`));
      f.reason = str(e.reason);
      f.type = str(e.type);
      f.source = str(getPath(e, 'source.component'));
      f.reportingComponent = str(e.reportingComponent);
      return f;
    },
  },
  table: {
    columns: [col('Last Seen'), col('Type'), col('Reason'), col('Object'), col('Message'), { ...nameColumn, priority: 1 }],
    cells(e) {
      const last = str(e.lastTimestamp) ?? str(e.eventTime) ?? str(getPath(e, 'metadata.creationTimestamp'));
      const seen = last ? age({ metadata: { creationTimestamp: last } }) : '<unknown>';
      const obj = `${String(getPath(e, 'involvedObject.kind') ?? '').toLowerCase()}/${String(getPath(e, 'involvedObject.name') ?? '')}`;
      return [seen, e.type ?? '', e.reason ?? '', obj, e.message ?? '', getPath(e, 'metadata.name')];
    },
  },
});

export const coreKinds: KindInfo[] = [
  namespacesKind,
  kind({ group: '', version: 'v1', resource: 'endpoints', kind: 'Endpoints', singular: 'endpoints', shortNames: ['ep'] }),
  kind({ group: '', version: 'v1', resource: 'serviceaccounts', kind: 'ServiceAccount', shortNames: ['sa'],
    extraSubresources: [{ name: 'token', kind: 'TokenRequest', group: 'authentication.k8s.io', version: 'v1', verbs: ['create'] }] }),
  secretsKind,
  kind({ group: '', version: 'v1', resource: 'configmaps', kind: 'ConfigMap', shortNames: ['cm'] }),
  nodesKind,
  eventsKind,
];
