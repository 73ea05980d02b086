export * from './networking.js';
export * from './gateway.js';
