import { InvalidRequestError } from '@app/registry';
import { eurekaInstanceOf, registrationOf } from './eureka-instance';
import { eurekaXml, parseEurekaXml } from './eureka-xml';

describe('Eureka XML', () => {
  it('reads an XML registration into the JSON convention, so it maps like a JSON one', () => {
    const body = parseEurekaXml(
      '<instance><instanceId>h:a:1</instanceId><app>A</app><ipAddr>10.0.0.2</ipAddr><port enabled="true">8080</port>' +
        '<leaseInfo><durationInSecs>30</durationInSecs></leaseInfo><metadata><k>v &amp; w</k></metadata>' +
        '<dataCenterInfo class="com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"><name>MyOwn</name></dataCenterInfo></instance>',
    );
    expect(body).toEqual({
      instance: {
        instanceId: 'h:a:1',
        app: 'A',
        ipAddr: '10.0.0.2',
        port: { $: '8080', '@enabled': 'true' },
        leaseInfo: { durationInSecs: '30' },
        metadata: { k: 'v & w' },
        dataCenterInfo: { '@class': 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo', name: 'MyOwn' },
      },
    });
    expect(registrationOf('A', body).registration).toMatchObject({ address: '10.0.0.2', port: 8080, ttl: 30, metadata: { k: 'v & w' } });
  });

  it('refuses malformed XML and DOCTYPEs (no entity expansion)', () => {
    expect(() => parseEurekaXml('<instance><port>80</instance>')).toThrow(InvalidRequestError);
    expect(() => parseEurekaXml('<!DOCTYPE x [<!ENTITY a "b">]><instance>&a;</instance>')).toThrow(/DOCTYPE/);
  });

  it('writes attributes, escapes text and leaves out metadata keys that are no XML names', () => {
    const xml = eurekaXml({ instance: eurekaInstanceOf('orders', { id: 'o1', address: '10.0.0.1', port: 80, metadata: { ok: 'a<b&c', '1st': 'x' }, tags: [], weight: 100, status: 'UP' }) });
    expect(xml).toMatch(/^<\?xml version="1.0" encoding="UTF-8" standalone="yes"\?><instance><instanceId>o1<\/instanceId>/);
    expect(xml).toContain('<port enabled="true">80</port><securePort enabled="false">443</securePort>');
    expect(xml).toContain('<dataCenterInfo class="com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"><name>MyOwn</name></dataCenterInfo>');
    expect(xml).toContain('<metadata><ok>a&lt;b&amp;c</ok></metadata>');
    expect(parseEurekaXml(xml)).toMatchObject({ instance: { instanceId: 'o1', port: { $: '80', '@enabled': 'true' }, metadata: { ok: 'a<b&c' } } });
  });
});
