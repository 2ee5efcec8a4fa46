import { Injectable } from '@nestjs/common';

interface RouteEntry {
  pattern: RegExp;
  methods: Set<string>;
}

/**
 * Which methods each path template answers, so an unknown method on a known path is a 405 instead of Express's 404.
 * Filled once at start-up from the generated OpenAPI document, which lists every route.
 */
@Injectable()
export class RouteTable {
  private entries: RouteEntry[] = [];

  load(paths: Record<string, object>): void {
    this.entries = Object.entries(paths).map(([template, operations]) => ({
      pattern: new RegExp(
        '^' +
          template
            .split(/\{[^}]+\}/)
            .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
            .join('[^/]+') +
          '/?$',
      ),
      methods: new Set(Object.keys(operations).map((method) => method.toUpperCase())),
    }));
  }

  allowedMethods(path: string): string[] {
    const methods = new Set<string>();
    for (const entry of this.entries) {
      if (entry.pattern.test(path)) entry.methods.forEach((method) => methods.add(method));
    }
    if (methods.has('GET')) methods.add('HEAD');
    return [...methods].sort();
  }
}
