import { Module } from '@nestjs/common';
import { WebhookDispatcher } from './webhook-dispatcher';
import { WebhookOutbox } from './webhook-outbox';
import { AppConfig } from '../config/app-config';
import { DEFAULT_WEBHOOK_SETTINGS, WEBHOOK_SETTINGS, type WebhookSettings } from './webhook-settings';
import { WebhookStore } from './webhook.store';
import { WebhookTransport } from './webhook-transport';
import { WebhooksController } from './webhooks.controller';
import { WebhooksService } from './webhooks.service';

/** Webhook subscriptions and the outbox dispatcher that delivers job events to them. */
@Module({
  controllers: [WebhooksController],
  providers: [
    {
      provide: WEBHOOK_SETTINGS,
      inject: [AppConfig],
      useFactory: (config: AppConfig): WebhookSettings => ({ ...DEFAULT_WEBHOOK_SETTINGS, ...config.webhooks }),
    },
    WebhookStore,
    WebhookOutbox,
    WebhookTransport,
    WebhookDispatcher,
    WebhooksService,
  ],
})
export class WebhooksModule {}
