import { Logger, Module } from '@nestjs/common';
import { DashboardAssets, defaultAssetsDirectory } from './dashboard-assets';
import { UiController } from './ui.controller';

/**
 * The live dashboard at /ui: static HTML/CSS/JS (apps/gateway/ui) that calls the public REST API and
 * /metrics from the operator's browser. The gateway only serves the files; it keeps no dashboard state.
 */
@Module({
  controllers: [UiController],
  providers: [
    {
      provide: DashboardAssets,
      useFactory: () => {
        const assets = DashboardAssets.load(defaultAssetsDirectory());
        // A build that forgot the assets still serves the registry; say so once instead of failing.
        if (!assets.page) new Logger('Dashboard').warn(`dashboard files not found in ${assets.directory}; /ui answers 404`);
        return assets;
      },
    },
  ],
})
export class UiModule {}
