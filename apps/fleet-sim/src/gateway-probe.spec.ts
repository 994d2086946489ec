import { parsePrometheusText } from '@app/stack';
import { GatewayProbe, diffGatewayCounters, gatewayCounters } from './gateway-probe';

const scrape = (regrants: number, confirmed: number, shed: number) =>
  parsePrometheusText(
    [
      '# TYPE registry_lease_regrants_total counter',
      `registry_lease_regrants_total{result="ok"} ${regrants}`,
      'registry_lease_regrants_total{result="error"} 1',
      `registry_lease_renewals_total{result="sent"} ${confirmed + 5}`,
      `registry_lease_renewals_total{result="confirmed"} ${confirmed}`,
      'registry_lease_renewals_total{result="lost"} 0',
      `registry_admission_rejections_total{reason="event_loop"} ${shed}`,
      'registry_admission_rejections_total{reason="renewal_lag"} 0',
      'registry_heartbeats_total{result="accepted"} 10',
      `registry_lease_grants_total ${regrants * 2}`,
      `registry_expirations_total ${shed * 3}`,
    ].join('\n'),
  );

describe('gateway counters', () => {
  it('reads the lease engine counters by result and reason', () => {
    const c = gatewayCounters(scrape(3, 100, 7));
    expect(c).toEqual({
      regrants: 4,
      leaseGrants: 6,
      expirations: 21,
      renewalsSent: 105,
      renewalsConfirmed: 100,
      renewalsLost: 0,
      admissionRejections: { event_loop: 7, renewal_lag: 0 },
      heartbeats: { accepted: 10 },
    });
  });

  it('diffs two scrapes key by key', () => {
    const d = diffGatewayCounters(gatewayCounters(scrape(3, 100, 7)), gatewayCounters(scrape(5, 160, 7)));
    expect(d.regrants).toBe(2);
    expect(d.renewalsConfirmed).toBe(60);
    expect(d.admissionRejections).toEqual({ event_loop: 0, renewal_lag: 0 });
    expect(d.leaseGrants).toBe(4);
  });

  it('sums the counters of several replicas', async () => {
    const probe = new GatewayProbe(['http://a/metrics', 'http://b/metrics']);
    const texts: Record<string, string> = {
      'http://a/metrics': 'registry_lease_grants_total 2\nregistry_event_loop_delay_seconds 0.5',
      'http://b/metrics': 'registry_lease_grants_total 3\nregistry_event_loop_delay_seconds 0.2',
    };
    const fetchMock = jest.spyOn(globalThis, 'fetch').mockImplementation(async (url) => new Response(texts[String(url)]));
    try {
      expect((await probe.read()).leaseGrants).toBe(5);
      expect(probe.takePeaks().eventLoopDelaySeconds).toBe(0.5);
    } finally {
      fetchMock.mockRestore();
    }
  });
});
