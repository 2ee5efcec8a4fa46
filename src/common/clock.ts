import { Injectable } from '@nestjs/common';

/** The wall clock, injectable so tests can pin time. */
@Injectable()
export class Clock {
  now(): Date {
    return new Date();
  }

  iso(): string {
    return this.now().toISOString();
  }
}
