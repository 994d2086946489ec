/**
 * The gateway's grpc-js channels to etcd ping only while a call or stream is open. etcd (3.4, default
 * --grpc-keepalive-min-time 5 s, pings without streams not permitted) answers pings on a connection
 * without streams as a policy violation and, at the third, closes it with GOAWAY "too_many_pings":
 * idle channels (the grant worker's, the pool's between writes) were being closed that way, and
 * grpc-js printed "rejected by server because of excess pings" to stderr. A 1 s ping interval makes
 * the violation come within seconds instead of ~30 s.
 */
import * as grpc from '@grpc/grpc-js';
import { EtcdConnection } from '@app/etcd';
import { sharedStack } from './support/stack';
import { sleep } from './support/wait';

const stack = sharedStack();

describe('etcd channels (real etcd)', () => {
  it('an idle connection is not closed by etcd for excess pings, and still answers', async () => {
    const logged: string[] = [];
    grpc.setLogger({ error: (...args: unknown[]) => logged.push(args.join(' ')), info: () => undefined, debug: () => undefined });
    grpc.setLogVerbosity(grpc.logVerbosity.ERROR);
    const connection = new EtcdConnection({
      endpoints: [stack.etcd.endpoint],
      credentials: { username: stack.etcd.username, password: stack.etcd.password },
      requestTimeoutMs: 5_000,
      keepaliveTimeMs: 1_000,
    });
    try {
      await connection.connect();
      expect(connection.isReady()).toBe(true);
      // Idle: no call, no stream. With pings permitted without calls, etcd closed it within ~4 s.
      await sleep(6_000);
      expect(logged.filter((line) => /excess pings|too_many_pings/i.test(line))).toEqual([]);
      expect(connection.isReady()).toBe(true);
      const id = (await connection.lease.leaseGrant({ TTL: 5, ID: 0 })).ID;
      await connection.lease.leaseRevoke({ ID: id });
    } finally {
      connection.close();
      grpc.setLogger(console);
    }
  });
});
