import 'reflect-metadata';
import fc from 'fast-check';
import { bodyValidationPipe } from '../validation';
import { RegisterInstanceDto, registrationFrom } from '../register-instance.dto';
import { plainRegistration } from './registration-body';

const pipe = bodyValidationPipe();
/** What the Nest route made of a body: the registration, or undefined when the pipe refused it. */
const throughPipe = async (body: unknown) =>
  pipe.transform(body, { type: 'body', metatype: RegisterInstanceDto }).then(
    (dto) => registrationFrom(dto as RegisterInstanceDto),
    () => undefined,
  );

describe('plainRegistration', () => {
  it('accepts the plain valid shape and fills in the documented defaults', () => {
    expect(plainRegistration({ address: '10.0.0.7', port: 8080 })).toEqual({
      address: '10.0.0.7',
      port: 8080,
      ttl: 30,
      metadata: {},
      tags: [],
      zone: undefined,
      weight: 100,
      status: 'UP',
    });
    const full = { address: 'pod-7.payments.svc', port: 1, ttl: 300, metadata: { version: '1.4.2' }, tags: ['canary'], zone: 'eu-1a', weight: 0, status: 'DRAINING' };
    expect(plainRegistration(JSON.parse(JSON.stringify(full)))).toEqual(full);
  });

  it.each([
    ['no body', undefined],
    ['an array', [{ address: '10.0.0.7', port: 80 }]],
    ['no port', { address: '10.0.0.7' }],
    ['a port as a string', { address: '10.0.0.7', port: '80' }],
    ['port 0', { address: '10.0.0.7', port: 0 }],
    ['a fractional ttl', { address: '10.0.0.7', port: 80, ttl: 30.5 }],
    ['ttl 4', { address: '10.0.0.7', port: 80, ttl: 4 }],
    ['a null zone', { address: '10.0.0.7', port: 80, zone: null }],
    ['an unknown status', { address: '10.0.0.7', port: 80, status: 'up' }],
    ['an extra key', { address: '10.0.0.7', port: 80, colour: 'red' }],
    ['a bad address', { address: 'a b', port: 80 }],
    ['metadata with a non-string value', { address: '10.0.0.7', port: 80, metadata: { a: 1 } }],
    ['metadata naming an Object member', { address: '10.0.0.7', port: 80, metadata: { constructor: 'x' } }],
    ['a tag that is not a string', { address: '10.0.0.7', port: 80, tags: [1] }],
    ['33 tags', { address: '10.0.0.7', port: 80, tags: Array.from({ length: 33 }, () => 't') }],
    ['an object with another prototype', Object.assign(Object.create({ x: 1 }) as object, { address: '10.0.0.7', port: 80 })],
  ])('leaves %s to the validation pipe', (_what, body) => {
    expect(plainRegistration(body)).toBeUndefined();
  });

  it('accepts only bodies the validation pipe accepts, with the same registration', async () => {
    const text = fc.oneof(fc.constantFrom('eu-1a', 'a/b', '', '.x', 'constructor', 'x'.repeat(128), 'x'.repeat(129)), fc.string({ maxLength: 6 }));
    const any = fc.oneof(text, fc.integer({ min: -2, max: 70_000 }), fc.double(), fc.constant(null), fc.boolean());
    // Mostly valid values (so the accepting branch is reached), edge cases and junk now and then.
    const mostly = <T>(valid: fc.Arbitrary<T>, edge: fc.Arbitrary<unknown>) => fc.oneof({ arbitrary: valid, weight: 12 }, { arbitrary: edge, weight: 1 }, { arbitrary: any, weight: 1 });
    const field = {
      address: mostly(fc.constantFrom('10.0.0.7', '::1', 'pod-7.svc', 'a'), fc.constantFrom('host_name', 'a'.repeat(254), '999.1.1.1', 'a b', '')),
      port: mostly(fc.integer({ min: 1, max: 65_535 }), fc.constantFrom(0, 65_536, 80.5, '80')),
      ttl: mostly(fc.integer({ min: 5, max: 300 }), fc.constantFrom(4, 301, 30.5)),
      metadata: mostly(
        fc.dictionary(fc.constantFrom('version', 'a.b/c', 'x'.repeat(128)), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
        fc.dictionary(fc.oneof(text, fc.constantFrom('valueOf', 'a b', 'x'.repeat(129))), fc.oneof(text, any, fc.constant('v'.repeat(513))), { maxKeys: 3 }),
      ),
      tags: mostly(fc.array(fc.constantFrom('canary', 't'.repeat(128)), { maxLength: 32 }), fc.oneof(fc.array(fc.oneof(text, any), { maxLength: 3 }), fc.array(text, { minLength: 33, maxLength: 34 }))),
      zone: mostly(fc.constantFrom('eu-1a', 'z', 'x'.repeat(128)), text),
      weight: mostly(fc.integer({ min: 0, max: 1000 }), fc.constantFrom(-1, 1001, 1.5)),
      status: mostly(fc.constantFrom('UP', 'DRAINING', 'DOWN'), fc.constantFrom('up', '')),
    };
    const body = fc.oneof(
      fc.record(field, { requiredKeys: ['address', 'port'] }),
      fc.record(field, { requiredKeys: [] }),
      fc.record({ ...field, extra: any }, { requiredKeys: ['address', 'port', 'extra'] }),
      any,
    );
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        const plain = plainRegistration(b);
        if (plain === undefined) return;
        accepted++;
        expect(await throughPipe(b)).toEqual(plain);
      }),
      { numRuns: 3000 },
    );
    // The generator must reach the accepting branch often enough for the property to mean something.
    expect(accepted).toBeGreaterThan(100);
  });
});
