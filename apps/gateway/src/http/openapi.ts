import { INestApplication } from '@nestjs/common';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { ruleFor } from '../auth/access-policy';

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const;

/**
 * The OpenAPI document of the running app: generated from the controllers' decorators, then made to
 * tell the whole contract. Every operation needs a Bearer token except those the access policy makes
 * public (they get `security: []`), so the two cannot disagree; request bodies refuse unknown fields
 * (`additionalProperties: false`), as the validation pipe does.
 */
export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Registry gateway')
      .setDescription(
        'Service registration, heartbeats and resolution in front of etcd and Redis. Every `/v1` call needs `Authorization: Bearer <token>` ' +
          '(use **Authorize**); errors are JSON `{error, message, field?}`, and a refused request writes nothing. Bodies are ' +
          '`application/json` (anything else: 415); an optional field is left out to get its default, never sent as `null` (400).',
      )
      .setVersion('1')
      // Relative: the document describes whichever replica (or load balancer) served it.
      .addServer('/', 'The gateway that served this document')
      .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'opaque', description: 'An API token from AUTH_TOKENS_FILE' }, 'bearer')
      .addSecurityRequirements('bearer')
      .build(),
  );
  document.info.license = { name: 'UNLICENSED' };
  for (const [path, item] of Object.entries(document.paths)) {
    const route = path.replace(/\{(\w+)\}/g, ':$1');
    for (const method of METHODS) {
      const operation = item[method];
      if (!operation) continue;
      if (ruleFor(method.toUpperCase(), route).grants.includes('public')) operation.security = [];
      const body = operation.requestBody && 'content' in operation.requestBody ? operation.requestBody.content['application/json']?.schema : undefined;
      const name = body && '$ref' in body ? body.$ref.split('/').pop() : undefined;
      const schema = name ? document.components?.schemas?.[name] : undefined;
      if (schema && !('$ref' in schema)) schema.additionalProperties = false;
    }
  }
  return document;
}
