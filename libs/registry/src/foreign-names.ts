import { isValidName } from './names';

/**
 * Names as other registries' clients make them (Consul service ids are free-form, Spring's default
 * Eureka instance id is `host:app:port`), mapped reversibly onto our key-safe names (NAME_PATTERN):
 * every byte outside `[A-Za-z0-9.-]` (and `_` itself, the escape character) becomes `_XX`, its UTF-8
 * byte in upper-case hex. A client reads back exactly what it wrote.
 *
 * Our own names pass through unchanged unless they contain `_` followed by two hex digits: such a
 * REST-registered name reads back through a foreign door with that sequence decoded (documented).
 */
const ESCAPE = /^[A-Za-z0-9.-]$/;

/** The registry name for a foreign name, or undefined when the encoded name is empty or too long. */
export function toRegistryName(foreign: string): string | undefined {
  let out = '';
  for (const byte of Buffer.from(foreign, 'utf8')) {
    const char = String.fromCharCode(byte);
    out += byte < 0x80 && ESCAPE.test(char) ? char : `_${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  // A name must start with a letter or digit (NAME_PATTERN): a foreign name that does not (`:x`, `.x`)
  // or that encodes to more than 128 characters is refused, and the door answers 400 naming the rule.
  return isValidName(out) ? out : undefined;
}

/** The foreign name a registry name stands for (inverse of toRegistryName). */
export function fromRegistryName(name: string): string {
  if (!name.includes('_')) return name;
  const bytes: number[] = [];
  for (let i = 0; i < name.length; i++) {
    const hex = name[i] === '_' ? name.slice(i + 1, i + 3) : '';
    if (/^[0-9A-F]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(name.charCodeAt(i));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}
