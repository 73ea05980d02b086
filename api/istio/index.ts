export * from './networking.js';
export * from './gateway.js';
export * from './security.js';
