// Structural schemas of the built-in kinds, for server-side field validation (unknown fields)
// and the OpenAPI v3 documents (`kubectl explain`). They follow the Kubernetes 1.32 types field
// by field where written out; a subtree written as `open` is not described here, so nothing
// inside it is reported or dropped (it is stored as sent). status is open everywhere: the
// controllers and the kubelet own it.
import type { Json } from '../util.js';

type S = Json;

const str: S = { type: 'string' };
const int32: S = { type: 'integer', format: 'int32' };
const int64: S = { type: 'integer', format: 'int64' };
const bool: S = { type: 'boolean' };
const intOrString: S = { 'x-kubernetes-int-or-string': true };
const time: S = { type: 'string', format: 'date-time' };
const strMap: S = { type: 'object', additionalProperties: str };
const quantityMap: S = { type: 'object', additionalProperties: intOrString };
const open: S = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
const obj = (properties: Record<string, S>, extra: Json = {}): S => ({ type: 'object', properties, ...extra });
const list = (items: S, extra: Json = {}): S => ({ type: 'array', items, ...extra });
const strList = list(str);
const openList = list(open);
/** A list merged by key in strategic merge patch (OpenAPI's x-kubernetes-patch-* extensions). */
const keyed = (items: S, key: string): S => list(items, { 'x-kubernetes-patch-merge-key': key, 'x-kubernetes-patch-strategy': 'merge', 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': [key] });
const localRef = obj({ name: str });

export const OBJECT_META: S = obj({
  name: str, generateName: str, namespace: str, selfLink: str, uid: str, resourceVersion: str,
  generation: int64, creationTimestamp: time, deletionTimestamp: time, deletionGracePeriodSeconds: int64,
  labels: strMap, annotations: strMap,
  ownerReferences: keyed(obj({ apiVersion: str, kind: str, name: str, uid: str, controller: bool, blockOwnerDeletion: bool }), 'uid'),
  finalizers: strList, managedFields: openList,
});

const LABEL_SELECTOR = obj({
  matchLabels: strMap,
  matchExpressions: list(obj({ key: str, operator: str, values: strList })),
});

const handlerActions = {
  exec: obj({ command: strList }),
  httpGet: obj({ path: str, port: intOrString, host: str, scheme: str, httpHeaders: list(obj({ name: str, value: str })) }),
  tcpSocket: obj({ port: intOrString, host: str }),
};
const PROBE = obj({
  ...handlerActions,
  grpc: obj({ port: int32, service: str }),
  initialDelaySeconds: int32, timeoutSeconds: int32, periodSeconds: int32, successThreshold: int32,
  failureThreshold: int32, terminationGracePeriodSeconds: int64,
});
const LIFECYCLE_HANDLER = obj({ ...handlerActions, sleep: obj({ seconds: int64 }) });

const CONTAINER = obj({
  name: str, image: str, command: strList, args: strList, workingDir: str,
  ports: keyed(obj({ name: str, hostPort: int32, containerPort: int32, protocol: str, hostIP: str }), 'containerPort'),
  envFrom: list(obj({ prefix: str, configMapRef: obj({ name: str, optional: bool }), secretRef: obj({ name: str, optional: bool }) })),
  env: keyed(obj({ name: str, value: str, valueFrom: open }), 'name'),
  resources: obj({ limits: quantityMap, requests: quantityMap, claims: openList }),
  resizePolicy: openList, restartPolicy: str,
  volumeMounts: keyed(obj({ name: str, readOnly: bool, recursiveReadOnly: str, mountPath: str, subPath: str, mountPropagation: str, subPathExpr: str }), 'mountPath'),
  volumeDevices: keyed(obj({ name: str, devicePath: str }), 'devicePath'),
  livenessProbe: PROBE, readinessProbe: PROBE, startupProbe: PROBE,
  lifecycle: obj({ postStart: LIFECYCLE_HANDLER, preStop: LIFECYCLE_HANDLER }),
  terminationMessagePath: str, terminationMessagePolicy: str, imagePullPolicy: str,
  securityContext: open, stdin: bool, stdinOnce: bool, tty: bool,
});

const VOLUME_SOURCES = [
  'hostPath', 'emptyDir', 'gcePersistentDisk', 'awsElasticBlockStore', 'gitRepo', 'secret', 'nfs', 'iscsi',
  'glusterfs', 'persistentVolumeClaim', 'rbd', 'flexVolume', 'cinder', 'cephfs', 'flocker', 'downwardAPI', 'fc',
  'azureFile', 'configMap', 'vsphereVolume', 'quobyte', 'azureDisk', 'photonPersistentDisk', 'projected',
  'portworxVolume', 'scaleIO', 'storageos', 'csi', 'ephemeral', 'image',
];
const VOLUME = obj({ name: str, ...Object.fromEntries(VOLUME_SOURCES.map((s) => [s, open])) });

const POD_SPEC = obj({
  volumes: keyed(VOLUME, 'name'),
  initContainers: keyed(CONTAINER, 'name'),
  containers: keyed(CONTAINER, 'name'),
  ephemeralContainers: openList,
  restartPolicy: str, terminationGracePeriodSeconds: int64, activeDeadlineSeconds: int64, dnsPolicy: str,
  nodeSelector: strMap, serviceAccountName: str, serviceAccount: str, automountServiceAccountToken: bool,
  nodeName: str, hostNetwork: bool, hostPID: bool, hostIPC: bool, shareProcessNamespace: bool,
  securityContext: open, imagePullSecrets: keyed(localRef, 'name'), hostname: str, subdomain: str,
  affinity: open, schedulerName: str,
  tolerations: list(obj({ key: str, operator: str, value: str, effect: str, tolerationSeconds: int64 })),
  hostAliases: keyed(obj({ ip: str, hostnames: strList }), 'ip'),
  priorityClassName: str, priority: int32, dnsConfig: open,
  readinessGates: list(obj({ conditionType: str })),
  runtimeClassName: str, enableServiceLinks: bool, preemptionPolicy: str, overhead: quantityMap,
  topologySpreadConstraints: openList, setHostnameAsFQDN: bool, os: obj({ name: str }), hostUsers: bool,
  schedulingGates: keyed(obj({ name: str }), 'name'), resourceClaims: openList, resources: open,
});

const POD_TEMPLATE = obj({ metadata: OBJECT_META, spec: POD_SPEC });

const resource = (fields: Record<string, S>): S => obj({ apiVersion: str, kind: str, metadata: OBJECT_META, ...fields });
const workload = (spec: Record<string, S>): S => resource({ spec: obj(spec), status: open });

const rollingUpdate = (extra: Record<string, S>) => obj({ maxUnavailable: intOrString, ...extra });

const RULE = obj({ verbs: strList, apiGroups: strList, resources: strList, resourceNames: strList, nonResourceURLs: strList });
const SUBJECT = obj({ kind: str, apiGroup: str, name: str, namespace: str });
const ROLE_REF = obj({ apiGroup: str, kind: str, name: str });

/** Schemas by `<group>/<Kind>` (core group: `/<Kind>`). Kinds not listed are checked in metadata only. */
export const BUILTIN_SCHEMAS: Record<string, S> = {
  '/Pod': resource({ spec: POD_SPEC, status: open }),
  'apps/Deployment': workload({
    replicas: int32, selector: LABEL_SELECTOR, template: POD_TEMPLATE,
    strategy: obj({ type: str, rollingUpdate: rollingUpdate({ maxSurge: intOrString }) }),
    minReadySeconds: int32, revisionHistoryLimit: int32, paused: bool, progressDeadlineSeconds: int32,
  }),
  'apps/ReplicaSet': workload({ replicas: int32, minReadySeconds: int32, selector: LABEL_SELECTOR, template: POD_TEMPLATE }),
  'apps/StatefulSet': workload({
    replicas: int32, selector: LABEL_SELECTOR, template: POD_TEMPLATE, volumeClaimTemplates: openList,
    serviceName: str, podManagementPolicy: str,
    updateStrategy: obj({ type: str, rollingUpdate: obj({ partition: int32, maxUnavailable: intOrString }) }),
    revisionHistoryLimit: int32, minReadySeconds: int32,
    persistentVolumeClaimRetentionPolicy: obj({ whenDeleted: str, whenScaled: str }), ordinals: obj({ start: int32 }),
  }),
  'apps/DaemonSet': workload({
    selector: LABEL_SELECTOR, template: POD_TEMPLATE,
    updateStrategy: obj({ type: str, rollingUpdate: rollingUpdate({ maxSurge: intOrString }) }),
    minReadySeconds: int32, revisionHistoryLimit: int32,
  }),
  'batch/Job': workload({
    parallelism: int32, completions: int32, activeDeadlineSeconds: int64, podFailurePolicy: open, successPolicy: open,
    backoffLimit: int32, backoffLimitPerIndex: int32, maxFailedIndexes: int32, selector: LABEL_SELECTOR,
    manualSelector: bool, template: POD_TEMPLATE, ttlSecondsAfterFinished: int32, completionMode: str, suspend: bool,
    podReplacementPolicy: str, managedBy: str,
  }),
  '/Service': resource({
    spec: obj({
      ports: keyed(obj({ name: str, protocol: str, appProtocol: str, port: int32, targetPort: intOrString, nodePort: int32 }), 'port'),
      selector: strMap, clusterIP: str, clusterIPs: strList, type: str, externalIPs: strList, sessionAffinity: str,
      loadBalancerIP: str, loadBalancerSourceRanges: strList, externalName: str, externalTrafficPolicy: str,
      healthCheckNodePort: int32, publishNotReadyAddresses: bool, sessionAffinityConfig: open, ipFamilies: strList,
      ipFamilyPolicy: str, allocateLoadBalancerNodePorts: bool, loadBalancerClass: str, internalTrafficPolicy: str,
      trafficDistribution: str,
    }),
    status: open,
  }),
  '/ConfigMap': resource({ data: strMap, binaryData: strMap, immutable: bool }),
  '/Secret': resource({ data: strMap, stringData: strMap, type: str, immutable: bool }),
  '/Namespace': resource({ spec: obj({ finalizers: strList }), status: open }),
  '/ServiceAccount': resource({ secrets: openList, imagePullSecrets: keyed(localRef, 'name'), automountServiceAccountToken: bool }),
  'rbac.authorization.k8s.io/Role': resource({ rules: list(RULE) }),
  'rbac.authorization.k8s.io/ClusterRole': resource({ rules: list(RULE), aggregationRule: obj({ clusterRoleSelectors: list(LABEL_SELECTOR) }) }),
  'rbac.authorization.k8s.io/RoleBinding': resource({ subjects: list(SUBJECT), roleRef: ROLE_REF }),
  'rbac.authorization.k8s.io/ClusterRoleBinding': resource({ subjects: list(SUBJECT), roleRef: ROLE_REF }),
};

/** For kinds without a full schema: only ObjectMeta is known. */
export const METADATA_ONLY: S = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true, properties: { metadata: OBJECT_META } };

export function builtinSchema(group: string, kind: string): S {
  return BUILTIN_SCHEMAS[`${group}/${kind}`] ?? METADATA_ONLY;
}
