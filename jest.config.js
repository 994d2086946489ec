/** Two projects: fast unit tests of pure logic, and integration tests against real etcd + Redis. */
const moduleNameMapper = {
  '^@app/registry$': '<rootDir>/libs/registry/src',
  '^@app/etcd$': '<rootDir>/libs/etcd/src',
  '^@app/cache$': '<rootDir>/libs/cache/src',
  '^@app/concurrency$': '<rootDir>/libs/concurrency/src',
  '^@app/redis$': '<rootDir>/libs/redis/src',
  '^@app/runtime$': '<rootDir>/libs/runtime/src',
  '^@app/stack$': '<rootDir>/tools/stack',
  '^@app/client$': '<rootDir>/libs/client/src',
};
const transform = { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.spec.json' }] };
module.exports = {
  // Integration tests start real processes and wait for TTLs; a global option (not per project).
  testTimeout: 120000,
  projects: [
    {
      displayName: 'unit',
      rootDir: __dirname,
      testMatch: ['<rootDir>/libs/**/*.spec.ts', '<rootDir>/apps/**/*.spec.ts'],
      testEnvironment: 'node',
      moduleNameMapper,
      transform,
      globalTeardown: '<rootDir>/test/support/exit-guard.ts',
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
      setupFilesAfterEnv: ['<rootDir>/test/support/jest-setup.ts'],
    },
  ],
};
