/** What the hand checks of request bodies (batch-body.ts, registration-body.ts) take as "plain JSON". */
export function isPlainObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}

/** Own keys, enumerable or not, all among `allowed` (the pipe refuses any other with forbidNonWhitelisted). */
export function hasOnlyKeys(value: object, allowed: ReadonlySet<string>): boolean {
  for (const key of Object.getOwnPropertyNames(value)) if (!allowed.has(key)) return false;
  return Object.getOwnPropertySymbols(value).length === 0;
}

export function hasExactly(value: object, keys: number): boolean {
  return Object.getOwnPropertyNames(value).length === keys;
}
