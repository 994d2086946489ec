import { loadGatewayConfig } from '../config/gateway-config';
import { corsOptions } from './cors';

describe('CORS_ORIGINS', () => {
  it('is empty by default, which turns CORS off', () => {
    expect(loadGatewayConfig({}).CORS_ORIGINS).toEqual([]);
    expect(corsOptions([])).toBeUndefined();
  });

  it('takes a comma list of origins, or *', () => {
    expect(loadGatewayConfig({ CORS_ORIGINS: 'https://a.example, http://b.example:8080,' }).CORS_ORIGINS).toEqual(['https://a.example', 'http://b.example:8080']);
    expect(corsOptions(['https://a.example'])).toMatchObject({ origin: ['https://a.example'] });
    expect(corsOptions(['https://a.example', '*'])).toMatchObject({ origin: '*' });
  });

  it.each(['a.example', 'https://a.example/', 'https://a.example/path', 'ftp://a.example', 'https://*.example'])('rejects %s naming the variable', (value) => {
    expect(() => loadGatewayConfig({ CORS_ORIGINS: value })).toThrow(/^invalid CORS_ORIGINS:/);
  });

  it('exposes the headers browser apps need, and sends no credentials', () => {
    const options = corsOptions(['https://a.example'])!;
    expect(options.exposedHeaders).toEqual(expect.arrayContaining(['retry-after', 'x-request-id', 'x-registry-index']));
    expect(options.credentials).toBeUndefined();
  });
});
