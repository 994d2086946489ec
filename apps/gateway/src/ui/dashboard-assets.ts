import * as fs from 'node:fs';
import * as path from 'node:path';

export interface DashboardAsset {
  body: Buffer;
  contentType: string;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * The dashboard's static files, read once into memory (a few tens of KiB). Requests are answered by
 * looking a name up in this map, never by joining it onto a path, so no request can reach a file
 * outside the directory. Files of other types (editor backups, notes) are not served.
 */
export class DashboardAssets {
  private constructor(
    private readonly files: ReadonlyMap<string, DashboardAsset>,
    readonly directory: string,
  ) {}

  /** An absent or unreadable directory gives an empty set: the gateway still starts, /ui answers 404. */
  static load(directory: string): DashboardAssets {
    const files = new Map<string, DashboardAsset>();
    let names: string[];
    try {
      names = fs.readdirSync(directory);
    } catch {
      return new DashboardAssets(files, directory);
    }
    for (const name of names) {
      const contentType = CONTENT_TYPES[path.extname(name)];
      const file = path.join(directory, name);
      if (contentType && fs.statSync(file).isFile()) files.set(name, { body: fs.readFileSync(file), contentType });
    }
    return new DashboardAssets(files, directory);
  }

  get(name: string): DashboardAsset | undefined {
    return this.files.get(name);
  }

  get page(): DashboardAsset | undefined {
    return this.files.get('index.html');
  }

  get size(): number {
    return this.files.size;
  }
}

/**
 * Where the files are: `apps/gateway/ui` next to `src/` when run from source (ts-node, jest), and the
 * same relative place under `dist/` after `npm run build` (nest-cli.json copies them there).
 */
export function defaultAssetsDirectory(): string {
  return path.resolve(__dirname, '..', '..', 'ui');
}
