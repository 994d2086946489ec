import { Module } from '@nestjs/common';
import { ConsulDoor } from './consul-door';

/** The Consul HTTP API subset on CONSUL_API_PORT (README "Consul door"). */
@Module({ providers: [ConsulDoor], exports: [ConsulDoor] })
export class ConsulModule {}
