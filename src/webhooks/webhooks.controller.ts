import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiParam,
  ApiTags,
} from '@nestjs/swagger';
import type { Response } from 'express';
import { CurrentPrincipal, RequireRole } from '../auth/auth.decorators';
import type { Principal } from '../auth/role';
import { ProblemModel } from '../common/errors/problem.model';
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

const WEBHOOK_PARAM = { name: 'id', format: 'uuid', description: 'The webhook id from the create response' };

@ApiTags('webhooks')
@Controller('v1/webhooks')
export class WebhooksController {
  constructor(private readonly webhooks: WebhooksService) {}

  /** Subscribe a URL to events. The answer carries a generated secret, once, when the request named none. */
  @Post()
  @HttpCode(201)
  @RequireRole('admin')
  @ApiCreatedResponse({ type: CreatedWebhookModel, description: 'Created; at the Location header' })
  @ApiBadRequestResponse({ type: ProblemModel })
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
  list(@Query() query: ListWebhooksQuery): WebhookPageModel {
    return this.webhooks.list(query);
  }

  /** Get a subscription (its secret is never shown). */
  @Get(':id')
  @RequireRole('admin')
  @ApiParam(WEBHOOK_PARAM)
  @ApiOkResponse({ type: WebhookModel })
  @ApiNotFoundResponse({ type: ProblemModel })
  get(@Param('id') id: string): WebhookModel {
    return this.webhooks.get(id);
  }

  /** Delete a subscription; its pending deliveries are never sent. */
  @Delete(':id')
  @HttpCode(204)
  @RequireRole('admin')
  @ApiParam(WEBHOOK_PARAM)
  @ApiNoContentResponse({ description: 'Deleted' })
  @ApiNotFoundResponse({ type: ProblemModel })
  delete(@Param('id') id: string, @CurrentPrincipal() principal: Principal): void {
    this.webhooks.delete(id, principal);
  }

  /** The subscription's deliveries, newest first: status, attempts, last error. */
  @Get(':id/deliveries')
  @RequireRole('admin')
  @ApiParam(WEBHOOK_PARAM)
  @ApiOkResponse({ type: WebhookDeliveryPageModel })
  @ApiNotFoundResponse({ type: ProblemModel })
  deliveries(@Param('id') id: string, @Query() query: ListDeliveriesQuery): WebhookDeliveryPageModel {
    return this.webhooks.deliveries(id, query);
  }
}
