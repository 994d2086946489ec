/** Two projects: fast unit tests of pure logic, and integration tests against real etcd + Redis. */
const moduleNameMapper = {
  '^@app/registry$': '<rootDir>/libs/registry/src',
  '^@app/etcd$': '<rootDir>/libs/etcd/src',
  '^@app/cache$': '<rootDir>/libs/cache/src',
  '^@app/concurrency$': '<rootDir>/libs/concurrency/src',
  '^@app/stack$': '<rootDir>/tools/stack',
};
const transform = { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.spec.json' }] };
module.exports = {
  projects: [
    {
      displayName: 'unit',
      rootDir: __dirname,
      testMatch: ['<rootDir>/libs/**/*.spec.ts', '<rootDir>/apps/**/*.spec.ts'],
      testEnvironment: 'node',
      moduleNameMapper,
      transform,
    },
    {
      displayName: 'integration',
      rootDir: __dirname,
      testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
      testEnvironment: 'node',
      moduleNameMapper,
      transform,
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
      testTimeout: 120000,
    },
  ],
};
