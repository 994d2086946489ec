/**
 * @registry-gateway/client: register pods with the registry gateway and resolve services through it.
 * Stands alone (Node 20 built-ins only): nothing here imports the gateway or the repository's other libs.
 */
export { registerInstance, InstanceRegistration } from './registration';
export type { RegistrationOptions, RegistrationEvents, RegistrationState } from './registration';
export { resolver, Resolver, ServiceWatch } from './resolver';
export type { ResolverOptions, Resolution, WatchOptions } from './resolver';
export { Picker } from './picker';
export type { PickOptions, PickStrategy } from './picker';
export type { Instance, InstanceFilter } from './types';
export { RegistryClientError, GatewaysUnavailableError, RequestRejectedError, ClosedError } from './errors';
export type { GatewayFailure } from './errors';
export { rendezvousOrder } from './rendezvous';
export { fetchTransport } from './transport';
export type { Transport, HttpRequest, HttpResponse } from './transport';
export { systemClock } from './clock';
export type { Clock } from './clock';
export type { ShutdownSignal } from './signals';
