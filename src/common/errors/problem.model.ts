import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class FieldErrorModel {
  /** Dotted path of the offending field (`body.level`, `query.limit`). */
  field!: string;
  messages!: string[];
}

/** An RFC 9457 problem document; every error the API returns has this shape. */
export class ProblemModel {
  /** A URI naming the kind of problem. */
  @ApiProperty({ example: 'urn:apiscp-backup-api:problem:site-not-found' })
  type!: string;
  @ApiProperty({ example: 'No such site' })
  title!: string;
  @ApiProperty({ example: 404 })
  status!: number;
  @ApiProperty({ example: 'No site named site42 exists under /home/virtual' })
  detail!: string;
  /** The machine-readable error code. */
  @ApiProperty({ example: 'site-not-found' })
  code!: string;
  /** The request path. */
  instance!: string;
  /** Present on validation errors: one entry per bad field. */
  @ApiPropertyOptional({ type: [FieldErrorModel] })
  errors?: FieldErrorModel[];
  /** Present on internal errors; the same id is in the service log. */
  errorId?: string;
}
