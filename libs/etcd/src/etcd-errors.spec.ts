import { castGrpcError, EtcdInvalidAuthTokenError, EtcdLeaseInvalidError, EtcdPermissionDeniedError, GRPCUnavailableError } from 'etcd3';
import { InstanceNotFoundError, OverloadedError, RegistryBackendError, RegistryUnavailableError, StorageFullError } from '@app/registry';
import {
  etcdFailure,
  grpcStatusOf,
  isEtcdOverloaded,
  isEtcdSpaceExhausted,
  isCredentialRejection,
  isEtcdUnavailable,
  isResponseTooLarge,
  isRevisionCompacted,
  responseSizeOf,
  withEtcdAction,
} from './etcd-errors';

/** An error as grpc-js rejects a call with, after etcd3's castGrpcError (what EtcdConnection throws). */
function grpcError(code: number, status: string, details: string): Error {
  return castGrpcError(Object.assign(new Error(`${code} ${status}: ${details}`), { code, details }));
}

const tooLarge = () => grpcError(8, 'RESOURCE_EXHAUSTED', 'Received message larger than max (5123456 vs 4194304)');

describe('etcd error classification', () => {
  it('treats UNAVAILABLE and DEADLINE_EXCEEDED, and only those, as etcd being unavailable', () => {
    expect(isEtcdUnavailable(grpcError(14, 'UNAVAILABLE', 'No connection established'))).toBe(true);
    expect(isEtcdUnavailable(grpcError(14, 'UNAVAILABLE', 'etcdserver: leader changed'))).toBe(true);
    expect(isEtcdUnavailable(grpcError(4, 'DEADLINE_EXCEEDED', 'Deadline exceeded'))).toBe(true);
    // Built by EtcdConnection itself when the channel never connects: no grpc-js prefix, the class says it.
    expect(isEtcdUnavailable(new GRPCUnavailableError('etcd unreachable: timeout'))).toBe(true);

    expect(isEtcdUnavailable(tooLarge())).toBe(false);
    expect(isEtcdUnavailable(grpcError(7, 'PERMISSION_DENIED', 'etcdserver: permission denied'))).toBe(false);
    expect(isEtcdUnavailable(grpcError(3, 'INVALID_ARGUMENT', 'etcdserver: request is too large'))).toBe(false);
    expect(isEtcdUnavailable(new Error('UNAVAILABLE'))).toBe(false);
    expect(isEtcdUnavailable(undefined)).toBe(false);
  });

  it('names the gRPC status from the message, falling back to the class etcd3 chose', () => {
    expect(grpcStatusOf(tooLarge())).toBe('RESOURCE_EXHAUSTED');
    const denied = grpcError(7, 'PERMISSION_DENIED', 'etcdserver: permission denied');
    expect(denied).toBeInstanceOf(EtcdPermissionDeniedError);
    expect(grpcStatusOf(denied)).toBe('PERMISSION_DENIED');
    expect(grpcStatusOf(new EtcdPermissionDeniedError('etcdserver: permission denied'))).toBe('PERMISSION_DENIED');
    expect(grpcStatusOf(new EtcdLeaseInvalidError('etcdserver: requested lease not found'))).toBe('NOT_FOUND');
    expect(grpcStatusOf(castGrpcError(new Error('Channel has been shut down')))).toBe('UNKNOWN');
    expect(grpcStatusOf(new Error('a bug'))).toBeUndefined();
    expect(grpcStatusOf('a string')).toBeUndefined();
  });

  it('recognises an answer over the gRPC message limit and reads its size', () => {
    expect(isResponseTooLarge(tooLarge())).toBe(true);
    expect(responseSizeOf(tooLarge())).toEqual({ size: 5_123_456, max: 4_194_304 });
    expect(responseSizeOf(grpcError(8, 'RESOURCE_EXHAUSTED', 'Received message larger than max (10 vs. 4)'))).toEqual({ size: 10, max: 4 });
    const noSpace = grpcError(8, 'RESOURCE_EXHAUSTED', 'etcdserver: mvcc: database space exceeded');
    expect(isResponseTooLarge(noSpace)).toBe(false);
    expect(responseSizeOf(noSpace)).toBeUndefined();
  });

  it("tells etcd's transient 'too many requests' and compaction apart from other statuses", () => {
    expect(isEtcdOverloaded(grpcError(8, 'RESOURCE_EXHAUSTED', 'etcdserver: too many requests'))).toBe(true);
    expect(isEtcdOverloaded(tooLarge())).toBe(false);
    expect(isRevisionCompacted(grpcError(11, 'OUT_OF_RANGE', 'etcdserver: mvcc: required revision has been compacted'))).toBe(true);
    expect(isRevisionCompacted(grpcError(11, 'OUT_OF_RANGE', 'etcdserver: mvcc: required revision is a future revision'))).toBe(false);
  });
});

describe('etcdFailure', () => {
  it('maps unavailability to registry_unavailable, as before', () => {
    const failure = etcdFailure(grpcError(14, 'UNAVAILABLE', 'No connection established'), 'reading service a');
    expect(failure).toBeInstanceOf(RegistryUnavailableError);
    expect(failure?.message).toBe('etcd is unavailable; retry later');
  });

  it('never reports an answered request as unavailable: an oversized answer is etcd_error naming the status and the action', () => {
    const failure = etcdFailure(tooLarge(), 'reading service payments');
    expect(failure).toBeInstanceOf(RegistryBackendError);
    expect(failure?.code).toBe('etcd_error');
    expect((failure as RegistryBackendError).grpcStatus).toBe('RESOURCE_EXHAUSTED');
    expect(failure?.message).toBe('etcd error while reading service payments: RESOURCE_EXHAUSTED (Received message larger than max (5123456 vs 4194304))');
    expect(failure?.message).not.toMatch(/unavailable/i);
  });

  it.each([
    [7, 'PERMISSION_DENIED', 'etcdserver: permission denied'],
    [3, 'INVALID_ARGUMENT', 'etcdserver: request is too large'],
    [16, 'UNAUTHENTICATED', 'etcdserver: invalid auth token'],
    [13, 'INTERNAL', 'something broke'],
  ])('maps %s %s to etcd_error', (code, status, details) => {
    const failure = etcdFailure(grpcError(code, status, details), 'writing instance a/1');
    expect(failure).toBeInstanceOf(RegistryBackendError);
    expect((failure as RegistryBackendError).grpcStatus).toBe(status);
    expect(failure?.message).toBe(`etcd error while writing instance a/1: ${status} (${details})`);
  });

  it("maps a full database (NOSPACE) to registry_read_only with a long Retry-After, naming the cause and the action", () => {
    const failure = etcdFailure(grpcError(8, 'RESOURCE_EXHAUSTED', 'etcdserver: mvcc: database space exceeded'), 'granting a 6 s lease');
    expect(failure).toBeInstanceOf(StorageFullError);
    expect(failure?.code).toBe('registry_read_only');
    expect((failure as StorageFullError).retryAfterSeconds).toBe(30);
    expect(failure?.message).toMatch(/NOSPACE alarm\) while granting a 6 s lease/);
    expect(failure?.message).toMatch(/database space exceeded/);
    expect(isEtcdSpaceExhausted(grpcError(8, 'RESOURCE_EXHAUSTED', 'etcdserver: too many requests'))).toBe(false);
  });

  it("maps refused credentials to a 503-class etcd_error that names the cause and the settings to fix, with a long Retry-After", () => {
    const refused = grpcError(3, 'INVALID_ARGUMENT', 'etcdserver: authentication failed, invalid user ID or password');
    expect(isCredentialRejection(refused)).toBe(true);
    expect(isCredentialRejection(grpcError(7, 'PERMISSION_DENIED', 'etcdserver: permission denied'))).toBe(false);
    const failure = etcdFailure(refused, 'writing instance a/1');
    expect(failure).toBeInstanceOf(RegistryBackendError);
    expect(failure!.message).toBe(
      "etcd refuses the gateway's credentials while writing instance a/1 (etcdserver: authentication failed, invalid user ID or password): an operator must fix ETCD_USERNAME/ETCD_PASSWORD; lookups go on from memory",
    );
    expect((failure as RegistryBackendError).retryAfterSeconds).toBe(10);
  });

  it("maps etcd's own load shedding to overloaded with Retry-After", () => {
    const failure = etcdFailure(grpcError(8, 'RESOURCE_EXHAUSTED', 'etcdserver: too many requests'), 'granting a lease');
    expect(failure).toBeInstanceOf(OverloadedError);
    expect((failure as OverloadedError).retryAfterSeconds).toBe(1);
  });

  it('passes errors that did not come from etcd through (undefined): typed registry errors and bugs', () => {
    expect(etcdFailure(new InstanceNotFoundError('a', '1'), 'x')).toBeUndefined();
    expect(etcdFailure(new TypeError('x is undefined'), 'x')).toBeUndefined();
  });

  it('prefers the action recorded where the call failed, and keeps the original error class', () => {
    const err = withEtcdAction(withEtcdAction(grpcError(7, 'PERMISSION_DENIED', 'etcdserver: permission denied'), 'reading service a'), 'outer');
    expect(err).toBeInstanceOf(EtcdPermissionDeniedError);
    expect(Object.keys(err)).toEqual([]);
    expect(etcdFailure(err, 'fallback')?.message).toBe('etcd error while reading service a: PERMISSION_DENIED (etcdserver: permission denied)');
  });

  it('bounds the detail it repeats from etcd', () => {
    const failure = etcdFailure(grpcError(3, 'INVALID_ARGUMENT', 'x'.repeat(5_000)), 'y');
    expect(failure!.message.length).toBeLessThan(300);
  });
});

describe('withEtcdAction on a shared error', () => {
  it('labels a copy per caller, so callers sharing one failed call each report their own action', () => {
    const shared = new EtcdInvalidAuthTokenError('3 INVALID_ARGUMENT: etcdserver: authentication failed, invalid user ID or password');
    const first = withEtcdAction(shared, 'reading service a');
    const second = withEtcdAction(shared, 'granting a 6 s lease');
    expect(first).toBeInstanceOf(EtcdInvalidAuthTokenError);
    expect(etcdFailure(first, 'x')?.message).toContain('reading service a');
    expect(etcdFailure(second, 'x')?.message).toContain('granting a 6 s lease');
  });
});
