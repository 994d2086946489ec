export * from './names';
export * from './limits';
export * from './instance';
export * from './key-layout';
export * from './errors';
export * from './foreign-names';
