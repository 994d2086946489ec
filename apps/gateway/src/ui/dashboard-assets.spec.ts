import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DashboardAssets, defaultAssetsDirectory } from './dashboard-assets';

describe('DashboardAssets', () => {
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ui-assets-'));
    fs.writeFileSync(path.join(dir, 'index.html'), '<!doctype html>');
    fs.writeFileSync(path.join(dir, 'app.js'), 'export {}');
    fs.writeFileSync(path.join(dir, 'style.css'), 'body{}');
    fs.writeFileSync(path.join(dir, 'notes.md'), 'not served');
    fs.writeFileSync(path.join(dir, 'app.js~'), 'editor backup');
    fs.mkdirSync(path.join(dir, 'nested.js'));
  });

  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('serves only html, js, css and svg files of the directory itself, with their content types', () => {
    const assets = DashboardAssets.load(dir);
    expect(assets.size).toBe(3);
    expect(assets.page?.contentType).toBe('text/html; charset=utf-8');
    expect(assets.get('app.js')).toEqual({ body: Buffer.from('export {}'), contentType: 'text/javascript; charset=utf-8' });
    expect(assets.get('style.css')?.contentType).toBe('text/css; charset=utf-8');
    for (const name of ['notes.md', 'app.js~', 'nested.js', '../index.html', `${dir}/app.js`, '']) expect(assets.get(name)).toBeUndefined();
  });

  it('is empty, not an error, when the directory is missing', () => {
    const assets = DashboardAssets.load(path.join(dir, 'missing'));
    expect(assets.size).toBe(0);
    expect(assets.page).toBeUndefined();
  });

  it('finds the committed dashboard files from the source tree', () => {
    const assets = DashboardAssets.load(defaultAssetsDirectory());
    expect(assets.page).toBeDefined();
    expect(assets.get('app.js')).toBeDefined();
  });
});
