/** Input bounds of the REST contract (design section 3). One place, so DTOs, docs and tests agree. */
export const REGISTRATION_LIMITS = {
  ttlSeconds: { min: 5, max: 300, default: 30 },
  port: { min: 1, max: 65535 },
  /** A DNS name is at most 253 characters; an IPv6 literal far less. */
  addressMaxLength: 253,
  metadata: { maxKeys: 64, keyMaxLength: 128, valueMaxLength: 512 },
  tags: { maxCount: 32, maxLength: 128 },
  zone: { maxLength: 128 },
  weight: { min: 0, max: 1000, default: 100 },
  /** Fastify rejects larger bodies with 413 before any handler runs. */
  bodyMaxBytes: 16 * 1024,
} as const;

/** `POST /v1/heartbeats` (node agents, sidecars): many instance refs in one request. */
export const HEARTBEAT_BATCH_LIMITS = {
  maxInstances: 1000,
  /** 1000 refs with names of the longest allowed length (2 x 128 characters) fit. */
  bodyMaxBytes: 320 * 1024,
} as const;
