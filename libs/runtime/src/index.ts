export * from './registry-runtime';
