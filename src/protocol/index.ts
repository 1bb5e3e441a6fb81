export * from './close-codes.js';
export * from './error-codes.js';
export * from './messages.js';
export * from './binary.js';
export * from './requests.js';
