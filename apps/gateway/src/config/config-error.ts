/** Thrown for a bad environment; the message names the variable and never echoes a secret. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
