import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  ArrayMaxSize,
  ArrayMinSize,
  ArrayUnique,
  IsArray,
  IsIn,
  IsOptional,
  ValidateIf,
  IsString,
  Matches,
  MaxLength,
  MinLength,
  registerDecorator,
  type ValidationOptions,
} from 'class-validator';
import { PageModel, pageQuery } from '../common/pagination/page';
import { WEBHOOK_EVENTS, type WebhookEvent } from './webhook-events';

export const WEBHOOK_URL_MAX_LENGTH = 2048;
export const DELIVERY_STATUSES = ['pending', 'sending', 'delivered', 'failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** Why `value` is not a URL deliveries may go to, or null when it is one. Parsed as `fetch` parses it. */
export function webhookUrlProblem(value: unknown): string | null {
  if (typeof value !== 'string') return 'url must be a string';
  if (value.length > WEBHOOK_URL_MAX_LENGTH) return `url must be at most ${WEBHOOK_URL_MAX_LENGTH} characters`;
  if (/[\s\0]/.test(value)) return 'url must not contain whitespace';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'url must be an absolute http or https URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'url must use http or https';
  if (url.username || url.password) return 'url must not hold credentials; sign with the secret instead';
  if (!url.hostname) return 'url must name a host';
  return null;
}

function IsWebhookUrl(options?: ValidationOptions) {
  return (object: object, propertyName: string) =>
    registerDecorator({
      name: 'isWebhookUrl',
      target: object.constructor,
      propertyName,
      options,
      validator: {
        validate: (value: unknown) => webhookUrlProblem(value) === null,
        defaultMessage: (args) => webhookUrlProblem(args?.value) ?? 'url is not valid',
      },
    });
}

export class CreateWebhookBody {
  /** Where deliveries are POSTed: an absolute `http` or `https` URL without credentials. */
  @IsWebhookUrl()
  @ApiProperty({
    format: 'uri',
    maxLength: WEBHOOK_URL_MAX_LENGTH,
    example: 'https://billing.example.com/hooks/backups',
  })
  url!: string;

  /** The events to deliver (at least one). */
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(WEBHOOK_EVENTS.length)
  @ArrayUnique()
  @IsIn(WEBHOOK_EVENTS, { each: true })
  @ApiProperty({ enum: WEBHOOK_EVENTS, isArray: true, example: ['job.failed', 'restore-point.created'] })
  events!: WebhookEvent[];

  /**
   * The HMAC-SHA256 signing key (16 to 256 printable ASCII characters, no spaces). When absent one is generated and
   * returned once, in this response only. It is never returned again.
   */
  // Absent means "generate one"; null is not a secret (IsOptional would let it through as if absent).
  @ValidateIf((_body: unknown, value: unknown) => value !== undefined)
  @IsString()
  @MinLength(16)
  @MaxLength(256)
  @Matches(/^[\x21-\x7e]+$/, { message: 'secret must be printable ASCII without spaces' })
  @ApiPropertyOptional({ minLength: 16, maxLength: 256, writeOnly: true })
  secret?: string;

  /** A note for people: who receives it and why. */
  @IsOptional()
  @IsString()
  @MaxLength(200)
  @ApiPropertyOptional({ maxLength: 200, example: 'billing: suspend backups-failed accounts' })
  description?: string;
}

/** A subscription. Its secret is never shown. */
export class WebhookModel {
  @ApiProperty({ format: 'uuid' })
  id!: string;
  @ApiProperty({ format: 'uri', example: 'https://billing.example.com/hooks/backups' })
  url!: string;
  @ApiProperty({ enum: WEBHOOK_EVENTS, isArray: true })
  events!: WebhookEvent[];
  @ApiProperty({ type: String, nullable: true })
  description!: string | null;
  /** The name of the token that created it. */
  @ApiProperty({ type: String, nullable: true })
  createdBy!: string | null;
  @ApiProperty({ format: 'date-time' })
  createdAt!: string;
}

/** The answer to a create: the subscription, and the generated secret when none was given. */
export class CreatedWebhookModel extends WebhookModel {
  /** Only when the request named no secret: the generated signing secret. Store it now; it is never shown again. */
  @ApiPropertyOptional({ example: 'whsec_3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' })
  secret?: string;
}

export class WebhookPageModel extends PageModel(WebhookModel) {}

export class WebhookDeliveryModel {
  /** Also the payload's `id` and the `X-Webhook-Id` header: the same on every attempt, for receivers to dedupe on. */
  @ApiProperty({ format: 'uuid' })
  id!: string;
  @ApiProperty({ format: 'uuid' })
  webhookId!: string;
  @ApiProperty({ enum: WEBHOOK_EVENTS })
  event!: WebhookEvent;
  /** The job the event is about. */
  @ApiProperty({ type: String, format: 'uuid', nullable: true })
  jobId!: string | null;
  /** `pending` (waiting for its first attempt or a retry), `sending`, `delivered`, or `failed` (given up). */
  @ApiProperty({ enum: DELIVERY_STATUSES })
  status!: DeliveryStatus;
  /** Attempts made so far. */
  @ApiProperty({ example: 1 })
  attempts!: number;
  /** The HTTP status of the last answer, if there was one. */
  @ApiProperty({ type: Number, nullable: true, example: 500 })
  lastStatusCode!: number | null;
  /** Why the last attempt failed. */
  @ApiProperty({ type: String, nullable: true, example: 'HTTP 500: upstream unavailable' })
  lastError!: string | null;
  @ApiProperty({ format: 'date-time' })
  createdAt!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  lastAttemptAt!: string | null;
  /** When the next attempt is due, while `pending`. */
  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  nextAttemptAt!: string | null;
  /** When it was delivered or given up. */
  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  finishedAt!: string | null;
}

export class WebhookDeliveryPageModel extends PageModel(WebhookDeliveryModel) {}

export const DEFAULT_WEBHOOK_PAGE_LIMIT = 50;

export class ListWebhooksQuery extends pageQuery(DEFAULT_WEBHOOK_PAGE_LIMIT) {}

export class ListDeliveriesQuery extends pageQuery(DEFAULT_WEBHOOK_PAGE_LIMIT) {
  /** Only deliveries in this state. */
  @IsOptional()
  @IsIn(DELIVERY_STATUSES)
  @ApiPropertyOptional({ enum: DELIVERY_STATUSES })
  status?: DeliveryStatus;
}
