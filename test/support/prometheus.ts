/**
 * A strict parser of the Prometheus text exposition format (0.0.4): every line must be a comment, a HELP/TYPE line or
 * a well-formed sample, or it throws. Samples keep their full name (`x_bucket`, `x_count`) and labels.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: string;
  help: string;
  samples: Sample[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)/y;
const SUFFIXES = ['_bucket', '_count', '_sum', '_total', '_created'];

export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let found = families.get(name);
    if (!found) families.set(name, (found = { name, type: 'untyped', help: '', samples: [] }));
    return found;
  };
  for (const [index, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) ?(.*)$/.exec(line);
    if (meta) {
      if (meta[1] === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(meta[3]))
          throw new Error(`line ${index + 1}: bad type ${meta[3]}`);
        family(meta[2]).type = meta[3];
      } else {
        family(meta[2]).help = meta[3];
      }
      continue;
    }
    if (line.startsWith('#')) continue;
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`line ${index + 1} is not a sample: ${line}`);
    const labels: Record<string, string> = {};
    if (match[3]) {
      LABEL.lastIndex = 0;
      let consumed = 0;
      let label: RegExpExecArray | null;
      while (consumed < match[3].length && (label = LABEL.exec(match[3]))) {
        labels[label[1]] = label[2].replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
        consumed = LABEL.lastIndex;
      }
      if (consumed !== match[3].length) throw new Error(`line ${index + 1}: bad labels ${match[3]}`);
    }
    const value = match[4] === '+Inf' ? Infinity : match[4] === '-Inf' ? -Infinity : Number(match[4]);
    if (Number.isNaN(value) && match[4] !== 'NaN') throw new Error(`line ${index + 1}: bad value ${match[4]}`);
    const base = SUFFIXES.reduce(
      (name, suffix) =>
        families.has(name)
          ? name
          : name.endsWith(suffix) && families.has(name.slice(0, -suffix.length))
            ? name.slice(0, -suffix.length)
            : name,
      match[1],
    );
    family(base).samples.push({ name: match[1], labels, value });
  }
  return families;
}

/** The value of the first sample named `name` whose labels include `labels`. */
export function sampleValue(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const family of families.values()) {
    const sample = family.samples.find(
      (candidate) =>
        candidate.name === name && Object.entries(labels).every(([key, value]) => candidate.labels[key] === value),
    );
    if (sample) return sample.value;
  }
  return undefined;
}
