import { ResolvedInstance } from '@app/registry';
import { EncodedApplications } from './encoded-applications';
import { parseEurekaXml } from './eureka-xml';

const resolved = (id: string, status: ResolvedInstance['status'] = 'UP'): ResolvedInstance => ({ id, address: '10.0.0.1', port: 80, metadata: {}, tags: [], weight: 100, status });

describe('EncodedApplications (GET /apps)', () => {
  const services = [
    { service: 'orders', revision: '10', instances: [resolved('o1'), resolved('o2', 'DOWN')] },
    { service: 'empty', revision: '11', instances: [] },
    { service: 'my_3Aapp', revision: '12', instances: [resolved('h_3Aa_3A1')] },
  ];

  it('writes the applications document in JSON, services without instances left out', () => {
    const doc = JSON.parse(new EncodedApplications().encode('json', services).toString());
    expect(doc.applications.versions__delta).toBe('1');
    expect(doc.applications.apps__hashcode).toBe('DOWN_1_UP_2_');
    expect(doc.applications.application.map((a: { name: string; instance: Array<{ instanceId: string }> }) => [a.name, a.instance.map((i) => i.instanceId)])).toEqual([
      ['ORDERS', ['o1', 'o2']],
      ['MY:APP', ['h:a:1']],
    ]);
    expect(JSON.parse(new EncodedApplications().encode('json', []).toString())).toEqual({ applications: { versions__delta: '1', apps__hashcode: '', application: [] } });
  });

  it('writes the same document in XML', () => {
    const xml = new EncodedApplications().encode('xml', services).toString();
    expect(xml).toMatch(/^<\?xml version="1.0" encoding="UTF-8" standalone="yes"\?><applications><versions__delta>1<\/versions__delta><apps__hashcode>DOWN_1_UP_2_<\/apps__hashcode><application><name>ORDERS<\/name>/);
    const parsed = parseEurekaXml(xml) as { applications: { application: Array<{ name: string }> } };
    expect(parsed.applications.application.map((a) => a.name)).toEqual(['ORDERS', 'MY:APP']);
  });

  it('encodes an application again only when its revision moves', () => {
    const applications = new EncodedApplications();
    const first = applications.encode('json', services).toString();
    // Same revision: the kept encoding (the content of a revision cannot change).
    const sameRevision = [{ ...services[0], instances: [resolved('changed')] }];
    expect(applications.encode('json', sameRevision).toString()).toContain('"instanceId":"o1"');
    const moved = [{ ...services[0], revision: '13', instances: [resolved('changed')] }];
    expect(applications.encode('json', moved).toString()).toContain('"instanceId":"changed"');
    expect(first).toContain('"instanceId":"o1"');
  });
});
