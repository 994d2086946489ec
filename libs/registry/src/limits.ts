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

/**
 * Tags through the protocol doors. Clients there pack data into tags: go-micro's Consul registry puts
 * each endpoint in one tag as hex-encoded zlib JSON (typically 0.3-4 KB, one per endpoint), so
 * REGISTRATION_LIMITS.tags (32 x 128) would refuse them. The bound is on the record a door writes:
 * every replica keeps each instance's value in memory, so 32 KiB of tags is the worst case an
 * instance may cost beyond a REST-registered one. A REST client reads such tags back unchanged (but
 * cannot re-register them through the REST API, which keeps its own limits).
 */
export const DOOR_TAG_LIMITS = {
  maxCount: 256,
  /** UTF-8 bytes of all tags together; one tag may use all of it. */
  maxTotalBytes: 32 * 1024,
  /** A registration body at the doors: the tags plus everything REGISTRATION_LIMITS allows. */
  bodyMaxBytes: 128 * 1024,
} as const;
