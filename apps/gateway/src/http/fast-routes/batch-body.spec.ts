import 'reflect-metadata';
import fc from 'fast-check';
import { bodyValidationPipe } from '../validation';
import { HeartbeatBatchDto } from '../heartbeat-batch.dto';
import { plainBatchRefs } from './batch-body';

const pipe = bodyValidationPipe();
const pipeAccepts = async (body: unknown) =>
  pipe.transform(body, { type: 'body', metatype: HeartbeatBatchDto }).then(
    () => true,
    () => false,
  );

describe('plainBatchRefs', () => {
  it('accepts the plain valid shape, up to 1000 refs', () => {
    const instances = Array.from({ length: 1000 }, (_, i) => ({ service: 'payments', id: `pod-${i}` }));
    expect(plainBatchRefs({ instances })).toBe(instances);
    expect(plainBatchRefs(JSON.parse('{"instances":[{"id":"p","service":"s"}]}'))).toEqual([{ id: 'p', service: 's' }]);
  });

  it.each([
    ['no body', undefined],
    ['an array', [{ service: 's', id: 'p' }]],
    ['no refs', { instances: [] }],
    ['1001 refs', { instances: Array.from({ length: 1001 }, () => ({ service: 's', id: 'p' })) }],
    ['an extra top-level key', { instances: [{ service: 's', id: 'p' }], more: 1 }],
    ['an extra ref key', { instances: [{ service: 's', id: 'p', zone: 'a' }] }],
    ['a missing id', { instances: [{ service: 's' }] }],
    ['a bad name', { instances: [{ service: 's', id: '../p' }] }],
    ['a name over 128', { instances: [{ service: 's', id: 'p'.repeat(129) }] }],
    ['a number id', { instances: [{ service: 's', id: 7 }] }],
    ['a null ref', { instances: [null] }],
    ['an object with another prototype', { instances: [Object.assign(Object.create({ x: 1 }) as object, { service: 's', id: 'p' })] }],
  ])('leaves %s to the validation pipe', (_what, body) => {
    expect(plainBatchRefs(body)).toBeUndefined();
  });

  it('never accepts a body the validation pipe refuses (so every refusal keeps the pipe\'s answer)', async () => {
    const name = fc.oneof(fc.constantFrom('payments', 'p', 'a.b-c_d', '', '.x', 'a/b', 'x'.repeat(128), 'x'.repeat(129)), fc.string({ maxLength: 6 }));
    const value = fc.oneof(name, fc.integer(), fc.constant(null), fc.boolean());
    const ref = fc.oneof(
      fc.record({ service: name, id: name }),
      fc.record({ service: value, id: value }, { requiredKeys: [] }),
      fc.dictionary(fc.constantFrom('service', 'id', 'zone', 'constructor'), value),
      value,
    );
    const body = fc.oneof(
      fc.record({ instances: fc.array(ref, { minLength: 0, maxLength: 4 }) }),
      fc.record({ instances: fc.array(ref, { maxLength: 3 }), extra: value }),
      fc.record({ instances: value }),
      value,
    );
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        if (plainBatchRefs(b) !== undefined) expect(await pipeAccepts(b)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});
