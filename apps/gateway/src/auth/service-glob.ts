import { isValidName } from '@app/registry';

/** What a service glob may contain: name characters plus `*` (any run) and `?` (one character). */
export const SERVICE_GLOB_PATTERN = /^[A-Za-z0-9._*?-]{1,128}$/;

/**
 * Compiles service globs (`payments-*`, `team-?.api`) into one predicate. Only names that are valid
 * service names can match, so a glob like `*` never covers `a/b` or `../x`: a request naming such a
 * service is refused before the name pipe would reject it anyway.
 */
export function compileServiceGlobs(globs: readonly string[]): (service: string) => boolean {
  const patterns = globs.map((glob) => {
    if (!SERVICE_GLOB_PATTERN.test(glob)) throw new Error(`invalid service glob: ${glob}`);
    const source = glob.replace(/[.*?-]/g, (c) => (c === '*' ? '.*' : c === '?' ? '.' : `\\${c}`));
    return new RegExp(`^${source}$`);
  });
  return (service) => isValidName(service) && patterns.some((p) => p.test(service));
}
