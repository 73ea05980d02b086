export * from './spiffe.js';
export * from './certificate-service.js';
export * from './rsa-signer.js';
