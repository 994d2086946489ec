import 'reflect-metadata';
import { createGatewayApp } from './bootstrap';
import { ConfigError, loadGatewayConfig } from './config/gateway-config';

async function main(): Promise<void> {
  let config;
  try {
    config = loadGatewayConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`registry-gateway: configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const app = await createGatewayApp(config);
  await app.listen(config.PORT, config.HOST);
}

main().catch((err: Error) => {
  process.stderr.write(`registry-gateway: failed to start: ${err.message}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});
