export * from './csr.js';
export * from './ca-client.js';
export * from './cert-manager.js';
export * from './mtls.js';
export * from './from-env.js';
