import { Injectable, PipeTransform } from '@nestjs/common';
import { parseSiteRef, type SiteRef } from './site-ref';

@Injectable()
export class SiteRefPipe implements PipeTransform<unknown, SiteRef> {
  transform(value: unknown): SiteRef {
    return parseSiteRef(value);
  }
}
