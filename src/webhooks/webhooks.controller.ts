import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import { ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { CurrentPrincipal, RequireRole } from '../auth/auth.decorators';
import type { Principal } from '../auth/role';
import { ErrorCode } from '../common/errors/error-code';
import { ApiStandardProblems } from '../openapi/api-answers';
import {
  CreatedWebhookModel,
  CreateWebhookBody,
  ListDeliveriesQuery,
  ListWebhooksQuery,
  WebhookDeliveryPageModel,
  WebhookModel,
  WebhookPageModel,
} from './webhook.model';
import { WebhooksService } from './webhooks.service';

const WEBHOOK_PARAM = {
  name: 'id',
  description: 'The webhook id from the create response',
  schema: { type: 'string' as const, format: 'uuid' },
};

@ApiTags('webhooks')
@Controller('v1/webhooks')
export class WebhooksController {
  constructor(private readonly webhooks: WebhooksService) {}

  /** Subscribe a URL to events. The answer carries a generated secret, once, when the request named none. */
  @Post()
  @HttpCode(201)
  @RequireRole('admin')
  @ApiCreatedResponse({
    type: CreatedWebhookModel,
    description: 'Created; at the Location header',
    headers: {
      Location: {
        description: 'The subscription: `/v1/webhooks/{id}`',
        required: true,
        schema: { type: 'string', pattern: '^/v1/webhooks/[0-9a-f-]{36}$' },
      },
    },
  })
  @ApiStandardProblems()
  create(
    @Body() body: CreateWebhookBody,
    @CurrentPrincipal() principal: Principal,
    @Res({ passthrough: true }) res: Response,
  ): CreatedWebhookModel {
    const created = this.webhooks.create(body, principal);
    res.setHeader('Location', `/v1/webhooks/${created.id}`);
    // The answer may hold the only copy of a generated secret: no cache may keep it.
    res.setHeader('Cache-Control', 'no-store');
    return created;
  }

  /** List the subscriptions, newest first (secrets are never shown). */
  @Get()
  @RequireRole('admin')
  @ApiOkResponse({ type: WebhookPageModel })
  @ApiStandardProblems()
  list(@Query() query: ListWebhooksQuery): WebhookPageModel {
    return this.webhooks.list(query);
  }

  /** Get a subscription (its secret is never shown). */
  @Get(':id')
  @RequireRole('admin')
  @ApiParam(WEBHOOK_PARAM)
  @ApiOkResponse({ type: WebhookModel })
  @ApiStandardProblems(ErrorCode.WebhookNotFound)
  get(@Param('id') id: string): WebhookModel {
    return this.webhooks.get(id);
  }

  /** Delete a subscription; its pending deliveries are never sent. */
  @Delete(':id')
  @HttpCode(204)
  @RequireRole('admin')
  @ApiParam(WEBHOOK_PARAM)
  @ApiNoContentResponse({ description: 'Deleted' })
  @ApiStandardProblems(ErrorCode.WebhookNotFound)
  delete(@Param('id') id: string, @CurrentPrincipal() principal: Principal): void {
    this.webhooks.delete(id, principal);
  }

  /** The subscription's deliveries, newest first: status, attempts, last error. */
  @Get(':id/deliveries')
  @RequireRole('admin')
  @ApiParam(WEBHOOK_PARAM)
  @ApiOkResponse({ type: WebhookDeliveryPageModel })
  @ApiStandardProblems(ErrorCode.WebhookNotFound)
  deliveries(@Param('id') id: string, @Query() query: ListDeliveriesQuery): WebhookDeliveryPageModel {
    return this.webhooks.deliveries(id, query);
  }
}
