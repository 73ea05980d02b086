// networking.istio.io Gateway, ServiceEntry and Sidecar, as written in YAML (camelCase).
// The fields Trellis reads are typed.
import type { KubeObject } from '../kube/types.js';

/** A port as Gateway servers and ServiceEntries describe it. */
export interface IstioPort { number: number; protocol?: string; name?: string; targetPort?: number }

export interface ServerTLSSettings {
  httpsRedirect?: boolean;
  mode?: 'PASSTHROUGH' | 'SIMPLE' | 'MUTUAL' | 'AUTO_PASSTHROUGH' | 'ISTIO_MUTUAL' | 'OPTIONAL_MUTUAL';
  credentialName?: string;
  /** Files on the gateway's disk (instead of credentialName). */
  serverCertificate?: string;
  privateKey?: string;
  caCertificates?: string;
  subjectAltNames?: string[];
  minProtocolVersion?: 'TLS_AUTO' | 'TLSV1_0' | 'TLSV1_1' | 'TLSV1_2' | 'TLSV1_3';
  maxProtocolVersion?: 'TLS_AUTO' | 'TLSV1_0' | 'TLSV1_1' | 'TLSV1_2' | 'TLSV1_3';
  cipherSuites?: string[];
}

export interface GatewayServer {
  port: IstioPort;
  bind?: string;
  /** `host` or `<namespace>/host`; the namespace part is `*`, `.` or a namespace name. */
  hosts: string[];
  tls?: ServerTLSSettings;
  name?: string;
}

export interface GatewaySpec { selector?: Record<string, string>; servers?: GatewayServer[] }
export interface Gateway extends KubeObject { spec: GatewaySpec }

export interface WorkloadEntrySpec { address?: string; ports?: Record<string, number>; labels?: Record<string, string>; weight?: number }

export interface ServiceEntrySpec {
  hosts?: string[];
  addresses?: string[];
  ports?: IstioPort[];
  location?: 'MESH_EXTERNAL' | 'MESH_INTERNAL';
  resolution?: 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN';
  endpoints?: WorkloadEntrySpec[];
  exportTo?: string[];
}
export interface ServiceEntry extends KubeObject { spec: ServiceEntrySpec }

export interface IstioEgressListener { port?: IstioPort; bind?: string; hosts?: string[] }
export interface SidecarSpec {
  workloadSelector?: { labels?: Record<string, string> };
  egress?: IstioEgressListener[];
  outboundTrafficPolicy?: { mode?: 'ALLOW_ANY' | 'REGISTRY_ONLY' };
}
export interface Sidecar extends KubeObject { spec: SidecarSpec }

/** VirtualService `tls` rules: TLS connections routed by SNI without terminating them. */
export interface TLSMatchAttributes {
  sniHosts: string[];
  destinationSubnets?: string[];
  port?: number;
  sourceLabels?: Record<string, string>;
  gateways?: string[];
  sourceNamespace?: string;
}
export interface TLSRoute { match: TLSMatchAttributes[]; route?: { destination: { host: string; subset?: string; port?: { number?: number } }; weight?: number }[] }
