import { Controller, Get, NotFoundException, Param, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { FastifyReply } from 'fastify';
import { DashboardAsset, DashboardAssets } from './dashboard-assets';

/**
 * The page may only load its own files and talk to this gateway: the API token sits in the page's
 * localStorage, so injected script or a third-party resource would be a way to steal it.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** `GET /ui`, `/ui/` (the page) and `/ui/<file>` (its scripts and styles). Public: the files hold no data. */
@ApiExcludeController()
@Controller('ui')
export class UiController {
  constructor(private readonly assets: DashboardAssets) {}

  @Get()
  page(@Res() reply: FastifyReply): void {
    send(reply, this.assets.page);
  }

  @Get('*')
  file(@Param('*') name: string, @Res() reply: FastifyReply): void {
    send(reply, name === '' ? this.assets.page : this.assets.get(name));
  }
}

function send(reply: FastifyReply, asset: DashboardAsset | undefined): void {
  if (!asset) throw new NotFoundException('no such dashboard file');
  void reply
    .header('content-type', asset.contentType)
    // Revalidate every time: after an upgrade the page and its modules must not mix versions.
    .header('cache-control', 'no-cache')
    .header('content-security-policy', CONTENT_SECURITY_POLICY)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .send(asset.body);
}
