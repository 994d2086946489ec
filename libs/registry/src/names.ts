/**
 * Service names and instance ids become etcd key segments. The pattern has no `/`, so a name can
 * never escape its key (`../x`, `a/b`), and it must start alphanumeric so `.`/`..` are impossible.
 */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const NAME_RULE = '1-128 characters of [A-Za-z0-9._-], starting with a letter or digit';

export function isValidName(value: unknown): value is string {
  return typeof value === 'string' && NAME_PATTERN.test(value);
}
