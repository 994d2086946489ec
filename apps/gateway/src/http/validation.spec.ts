import 'reflect-metadata';
import { ArgumentMetadata } from '@nestjs/common';
import { InvalidRequestError } from '@app/registry';
import { RegisterInstanceDto } from './register-instance.dto';
import { bodyValidationPipe } from './validation';

const pipe = bodyValidationPipe();
const asBody: ArgumentMetadata = { type: 'body', metatype: RegisterInstanceDto };
const valid = { address: '10.0.0.1', port: 8080 };

async function refusal(body: unknown): Promise<{ message: string; field?: string }> {
  try {
    await pipe.transform(body, asBody);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidRequestError);
    return { message: (err as InvalidRequestError).message, field: (err as InvalidRequestError).field };
  }
  throw new Error('accepted');
}

describe('body validation', () => {
  it('takes an absent optional field for its default, but refuses null naming the field', async () => {
    await expect(pipe.transform({ ...valid }, asBody)).resolves.toEqual(valid);
    expect(await refusal({ ...valid, zone: null })).toEqual({ message: 'zone must not be null', field: 'zone' });
    expect(await refusal({ ...valid, ttl: null })).toEqual({ message: 'ttl must not be null', field: 'ttl' });
    expect(await refusal({ address: null, port: 80 })).toEqual({ message: 'address must not be null', field: 'address' });
  });

  it('reports a type error before a range error', async () => {
    expect(await refusal({ ...valid, port: '80' })).toEqual({ message: 'port must be an integer from 1 to 65535', field: 'port' });
    expect(await refusal({ ...valid, tags: 'canary' })).toEqual({ message: 'tags must be an array', field: 'tags' });
    expect(await refusal({ ...valid, zone: 7 })).toEqual({ message: 'zone must be a string', field: 'zone' });
  });

  it('refuses an unknown field as unknown, even when it is null', async () => {
    expect(await refusal({ ...valid, admin: null })).toEqual({ message: 'property admin should not exist', field: 'admin' });
  });

  it.each([undefined, null, [], 'text', 5])('refuses a body that is not a JSON object: %p', async (body) => {
    expect(await refusal(body)).toEqual({ message: 'the body must be a JSON object', field: undefined });
  });
});
