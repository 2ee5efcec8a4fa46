import 'reflect-metadata';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, posix, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { loadAll } from 'js-yaml';
import { Environment } from '../../../src/config/environment';
import { OPTIONAL_VARIABLES } from '../../../src/config/load-config';
import { SERVICE_NODE_FLAGS } from '../../support/service-process';

/** The source tree: compiled tests run from dist-test/ or any --outDir, while k8s/ and the Dockerfile stay here. */
function repoRoot(): string {
  for (const start of [__dirname, process.cwd()]) {
    let dir = resolve(start);
    for (;;) {
      if (existsSync(join(dir, 'k8s', 'kustomization.yaml')) && existsSync(join(dir, 'Dockerfile'))) return dir;
      const parent = dirname(dir);
      if (parent === dir) break;
      dir = parent;
    }
  }
  throw new Error(`no k8s/kustomization.yaml above ${__dirname} or ${process.cwd()}`);
}

interface Probe {
  httpGet?: { path?: string; port?: number | string };
}
interface EnvVar {
  name: string;
  value?: string;
}
interface VolumeMount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
}
interface Container {
  name: string;
  image?: string;
  ports?: { name?: string; containerPort: number }[];
  env?: EnvVar[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  resources?: { requests?: Record<string, unknown>; limits?: Record<string, unknown> };
  volumeMounts?: VolumeMount[];
  securityContext?: {
    privileged?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
  };
}
interface SecretProjection {
  name: string;
  items?: { key: string; path: string }[];
  optional?: boolean;
}
interface Volume {
  name: string;
  hostPath?: { path: string; type?: string };
  secret?: { secretName: string; items?: { key: string; path: string }[] };
  projected?: { sources: { secret?: SecretProjection }[] };
}
interface Manifest {
  apiVersion?: unknown;
  kind?: unknown;
  metadata?: { name?: unknown; labels?: Record<string, string> };
  spec?: unknown;
  data?: Record<string, unknown>;
  stringData?: Record<string, unknown>;
}
interface DaemonSetSpec {
  selector: { matchLabels: Record<string, string> };
  updateStrategy?: { type?: string; rollingUpdate?: { maxUnavailable?: number | string } };
  template: {
    metadata: { labels: Record<string, string> };
    spec: {
      nodeSelector?: Record<string, unknown>;
      hostNetwork?: boolean;
      terminationGracePeriodSeconds?: number;
      containers: Container[];
      volumes?: Volume[];
    };
  };
}
interface ServiceSpec {
  type?: string;
  internalTrafficPolicy?: string;
  selector?: Record<string, string>;
  ports: { port: number; targetPort?: number | string }[];
}
interface Kustomization {
  namespace?: string;
  resources?: string[];
  images?: { name: string; newName?: string; newTag?: string }[];
}

const root = repoRoot();
const k8sDir = join(root, 'k8s');
const yamlFiles = readdirSync(k8sDir)
  .filter((file) => /\.ya?ml$/.test(file))
  .sort();
const isObject = (doc: unknown): doc is Manifest => typeof doc === 'object' && doc !== null;
const documents = yamlFiles.flatMap((file) => {
  const parsed: unknown[] = loadAll(readFileSync(join(k8sDir, file), 'utf8'));
  return parsed.filter(isObject).map((doc) => ({ file, doc }));
});

function only(kind: string, file?: string): Manifest {
  const found = documents.filter(({ doc, file: f }) => doc.kind === kind && (file === undefined || f === file));
  assert.equal(found.length, 1, `expected one ${kind}${file ? ` in ${file}` : ''}, found ${found.length}`);
  return found[0].doc;
}

const defaults = new Environment();
/** Every variable of the configuration contract: those with a default, and those without one. */
const contract = new Set([...Object.keys(defaults), ...OPTIONAL_VARIABLES]);
const kustomization = only('Kustomization') as Kustomization & Manifest;
const daemonSet = only('DaemonSet').spec as DaemonSetSpec;
const pod = daemonSet.template.spec;
const container = pod.containers[0];
const configMapData = only('ConfigMap').data ?? {};
const env = new Map((container.env ?? []).map((variable) => [variable.name, variable.value]));

/** A probe's or Service's port, by number or by the container port's name. */
function containerPortOf(port: number | string | undefined): number | undefined {
  if (typeof port === 'number') return port;
  return container.ports?.find((candidate) => candidate.name === port)?.containerPort;
}

/** The Secret (name and key) whose item lands at `file` inside the container, through a mounted volume. */
function secretBehind(file: string): { secret: string; key: string } | undefined {
  for (const mount of container.volumeMounts ?? []) {
    const relative = posix.relative(mount.mountPath, file);
    if (relative.startsWith('..') || posix.isAbsolute(relative) || relative === '') continue;
    const volume = pod.volumes?.find((candidate) => candidate.name === mount.name);
    const projections: SecretProjection[] = [
      ...(volume?.secret ? [{ name: volume.secret.secretName, items: volume.secret.items }] : []),
      ...(volume?.projected?.sources.flatMap((source) => (source.secret ? [source.secret] : [])) ?? []),
    ];
    for (const projection of projections) {
      const item = projection.items?.find((candidate) => candidate.path === relative);
      if (item) return { secret: projection.name, key: item.key };
    }
  }
  return undefined;
}

describe('k8s manifests', () => {
  it('parse, and every document has apiVersion, kind and metadata.name', () => {
    assert.ok(yamlFiles.length >= 6, `k8s/ holds ${yamlFiles.join(', ')}`);
    for (const file of yamlFiles) {
      assert.ok(
        documents.some((entry) => entry.file === file),
        `${file} holds no document`,
      );
    }
    for (const { file, doc } of documents) {
      for (const field of [doc.apiVersion, doc.kind, doc.metadata?.name]) {
        assert.equal(typeof field, 'string', `${file}: ${doc.kind as string} lacks apiVersion, kind or metadata.name`);
      }
    }
  });

  it('kustomization.yaml lists every other file, except the example Secrets', () => {
    const expected = yamlFiles.filter((file) => file !== 'kustomization.yaml' && !file.endsWith('.example.yaml'));
    assert.deepEqual([...(kustomization.resources ?? [])].sort(), expected);
    // Applying the placeholders with every `kubectl apply -k` would overwrite the real Secrets.
    assert.ok(!kustomization.resources?.includes('secret.example.yaml'));
    assert.equal(kustomization.namespace, only('Namespace').metadata?.name);
    assert.ok(
      kustomization.images?.some((image) => image.name === container.image),
      `kustomization images: must name the DaemonSet's image ${container.image}`,
    );
  });

  it('runs one pod per labelled hosting node, on its own network, updated one node at a time', () => {
    assert.equal(pod.nodeSelector?.['apiscp.io/hosting-node'], 'true');
    assert.equal(pod.hostNetwork, false);
    assert.equal(daemonSet.updateStrategy?.type, 'RollingUpdate');
    assert.equal(daemonSet.updateStrategy?.rollingUpdate?.maxUnavailable, 1);
    for (const [label, value] of Object.entries(daemonSet.selector.matchLabels)) {
      assert.equal(daemonSet.template.metadata.labels[label], value, `pod template lacks selector label ${label}`);
    }
  });

  it('probes liveness on /healthz and readiness on /readyz, port 8080', () => {
    assert.deepEqual(
      container.ports?.map((port) => port.containerPort),
      [defaults.PORT],
    );
    assert.equal(container.livenessProbe?.httpGet?.path, '/healthz');
    assert.equal(container.readinessProbe?.httpGet?.path, '/readyz');
    for (const probe of [container.livenessProbe, container.readinessProbe, container.startupProbe]) {
      if (probe === undefined) continue;
      assert.ok(['/healthz', '/readyz'].includes(probe.httpGet?.path ?? ''), `probe on ${probe.httpGet?.path}`);
      assert.equal(containerPortOf(probe.httpGet?.port), 8080);
    }
  });

  it('requests and limits cpu and memory', () => {
    for (const kind of ['requests', 'limits'] as const) {
      for (const resource of ['cpu', 'memory']) {
        const value = container.resources?.[kind]?.[resource];
        assert.ok(typeof value === 'string' || typeof value === 'number', `resources.${kind}.${resource} missing`);
      }
    }
  });

  it('mounts /home/virtual read-write and the data directory from the host', () => {
    const hostPathMount = (hostPath: string) => {
      const volume = pod.volumes?.find((candidate) => candidate.hostPath?.path === hostPath);
      assert.ok(volume, `no hostPath volume for ${hostPath}`);
      const mount = container.volumeMounts?.find((candidate) => candidate.name === volume.name);
      assert.ok(mount, `hostPath ${hostPath} is not mounted`);
      return { volume, mount };
    };
    const virtual = hostPathMount('/home/virtual');
    assert.equal(virtual.mount.mountPath, defaults.VIRTUAL_ROOT);
    assert.notEqual(virtual.mount.readOnly, true, 'restores write into /home/virtual');
    const data = hostPathMount('/var/lib/apiscp-backup-api');
    assert.equal(data.mount.mountPath, defaults.DATA_DIR);
    assert.equal(data.volume.hostPath?.type, 'DirectoryOrCreate');
    // Its presence would switch scopes and exports to ApisCP's PHP tools, which cannot run in this image.
    assert.ok(
      !container.volumeMounts?.some((mount) => mount.mountPath === defaults.APNSCP_ROOT),
      'APNSCP_ROOT must not be mounted (see daemonset.yaml)',
    );
  });

  it('sets only variables of the configuration contract, in the DaemonSet and the ConfigMap', () => {
    assert.ok(contract.has('SHUTDOWN_GRACE_SECONDS') && contract.has('API_TOKENS_FILE'), 'contract list looks wrong');
    const set = [...env.keys(), ...Object.keys(configMapData)];
    assert.ok(set.length > 0);
    const unknown = set.filter((name) => !contract.has(name));
    assert.deepEqual(unknown, [], `not in src/config/environment.ts: ${unknown.join(', ')}`);
    for (const [name, value] of Object.entries(configMapData)) {
      assert.equal(typeof value, 'string', `ConfigMap ${name} must be a string (quote it)`);
    }
    const configMapName = only('ConfigMap').metadata?.name;
    assert.ok(container.envFrom?.some((source) => source.configMapRef?.name === configMapName));
  });

  it('mounts the tokens file and the duplicity passphrase from Secrets at the paths their variables name', () => {
    const exampleSecrets = documents.filter(({ file, doc }) => file === 'secret.example.yaml' && doc.kind === 'Secret');
    for (const variable of ['API_TOKENS_FILE', 'DUPLICITY_PASSPHRASE_FILE']) {
      const file = env.get(variable);
      assert.ok(file, `${variable} is not set`);
      const behind = secretBehind(file);
      assert.ok(behind, `${variable}=${file} is not a file of a mounted Secret`);
      const example = exampleSecrets.find(({ doc }) => doc.metadata?.name === behind.secret)?.doc;
      assert.ok(example, `secret.example.yaml has no Secret ${behind.secret}`);
      assert.ok(behind.key in { ...example.data, ...example.stringData }, `${behind.secret} lacks key ${behind.key}`);
    }
    assert.equal(env.get('API_TOKENS_FILE'), '/etc/apiscp-backup-api/tokens.json');
    assert.equal(basename(env.get('API_TOKENS_FILE')!), 'tokens.json');
  });

  it('outlasts the shutdown grace before the kubelet kills the pod', () => {
    const grace = Number(configMapData.SHUTDOWN_GRACE_SECONDS ?? defaults.SHUTDOWN_GRACE_SECONDS);
    assert.ok(Number.isInteger(grace) && grace > 0);
    // The job engine waits SHUTDOWN_GRACE_SECONDS, then gives aborted jobs' processes 10 s more.
    assert.ok(
      (pod.terminationGracePeriodSeconds ?? 30) > grace + 10,
      `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} <= SHUTDOWN_GRACE_SECONDS ${grace} + 10`,
    );
  });

  it('keeps root but drops every capability it does not need', () => {
    const security = container.securityContext;
    assert.notEqual(security?.privileged, true);
    assert.equal(security?.allowPrivilegeEscalation, false);
    assert.deepEqual(security?.capabilities?.drop, ['ALL']);
    for (const needed of ['CHOWN', 'FOWNER', 'DAC_READ_SEARCH', 'SETFCAP']) {
      assert.ok(security?.capabilities?.add?.includes(needed), `capability ${needed} missing`);
    }
    assert.ok(!security?.capabilities?.add?.some((cap) => ['NET_RAW', 'SYS_PTRACE', 'NET_ADMIN'].includes(cap)));
  });

  it('exposes port 8080 through a ClusterIP Service that keeps traffic on the caller’s node', () => {
    const service = only('Service').spec as ServiceSpec;
    assert.equal(service.type ?? 'ClusterIP', 'ClusterIP');
    assert.equal(service.internalTrafficPolicy, 'Local');
    assert.equal(service.ports[0].port, 8080);
    assert.equal(containerPortOf(service.ports[0].targetPort ?? service.ports[0].port), 8080);
    for (const [label, value] of Object.entries(service.selector ?? {})) {
      assert.equal(daemonSet.template.metadata.labels[label], value, `Service selects ${label}=${value}, pods lack it`);
    }
    assert.ok(Object.keys(service.selector ?? {}).length > 0);
  });
});

interface Instruction {
  keyword: string;
  args: string;
  stage: number;
}

/** Instructions with continuation lines joined, each tagged with its build stage (0 before the first FROM). */
function parseDockerfile(text: string): { instructions: Instruction[]; comments: { text: string; stage: number }[] } {
  const instructions: Instruction[] = [];
  const comments: { text: string; stage: number }[] = [];
  let stage = 0;
  let pending = '';
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed.startsWith('#')) {
      comments.push({ text: trimmed.slice(1).trim(), stage });
      continue;
    }
    if (pending === '' && trimmed === '') continue;
    pending += `${trimmed.replace(/\\$/, '')} `;
    if (trimmed.endsWith('\\')) continue;
    const [keyword, ...rest] = pending.trim().split(/\s+/);
    if (keyword.toUpperCase() === 'FROM') stage++;
    instructions.push({ keyword: keyword.toUpperCase(), args: rest.join(' '), stage });
    pending = '';
  }
  return { instructions, comments };
}

describe('Dockerfile', () => {
  const { instructions, comments } = parseDockerfile(readFileSync(join(root, 'Dockerfile'), 'utf8'));
  const all = (keyword: string) => instructions.filter((instruction) => instruction.keyword === keyword);
  const froms = all('FROM');
  const finalStage = froms.length;
  const inFinal = (keyword: string) => all(keyword).filter((instruction) => instruction.stage === finalStage);

  it('builds in one Debian stage and runs in a slim one, on a supported Node LTS, base images pinned by digest', () => {
    assert.ok(froms.length >= 2, 'multi-stage: at least two FROM');
    for (const from of froms) assert.match(from.args, /^node:(22|24)(\.\d+)*-bookworm(-slim)?@sha256:[0-9a-f]{64}\b/);
    assert.match(froms[0].args, /^node:(22|24)(\.\d+)*-bookworm@/);
    assert.match(froms.at(-1)!.args, /^node:(22|24)(\.\d+)*-bookworm-slim@/);
    const build = all('RUN').filter((instruction) => instruction.stage === 1);
    for (const step of ['npm ci', 'npm run build', 'npm prune --omit=dev']) {
      assert.ok(
        build.some((instruction) => instruction.args.includes(step)),
        `build stage lacks ${step}`,
      );
    }
  });

  it('installs the backup tools in the runtime stage', () => {
    const installed = inFinal('RUN')
      .map((instruction) => instruction.args)
      .filter((args) => /apt-get install/.test(args))
      .join(' ')
      .split(/\s+/);
    for (const pkg of ['duplicity', 'acl', 'attr', 'bacula-console', 'tini', 'gnupg', 'mariadb-client']) {
      assert.ok(installed.includes(pkg), `runtime stage does not install ${pkg}`);
    }
    const copied = inFinal('COPY').map((instruction) => instruction.args);
    for (const path of ['/app/dist', '/app/node_modules', '/app/package.json']) {
      assert.ok(
        copied.some((args) => args.includes('--from=') && args.includes(path)),
        `runtime stage does not copy ${path}`,
      );
    }
  });

  it('sets the environment the manifests rely on, exposes 8080 and checks /healthz without curl', () => {
    const envs = inFinal('ENV')
      .map((instruction) => instruction.args)
      .join(' ');
    for (const pair of ['HOST=0.0.0.0', 'PORT=8080', `DATA_DIR=${defaults.DATA_DIR}`, 'VIRTUAL_ROOT=/home/virtual']) {
      assert.ok(envs.split(/\s+/).includes(pair), `ENV lacks ${pair}`);
    }
    assert.deepEqual(
      inFinal('EXPOSE').map((instruction) => instruction.args),
      ['8080'],
    );
    const healthcheck = inFinal('HEALTHCHECK');
    assert.equal(healthcheck.length, 1);
    assert.match(healthcheck[0].args, /\/healthz/);
    assert.doesNotMatch(healthcheck[0].args, /\b(curl|wget)\b/);
  });

  it('starts node dist/main.js under tini, with the same node flags as npm start and the tests', () => {
    assert.deepEqual(JSON.parse(inFinal('ENTRYPOINT').at(-1)!.args), ['tini', '--']);
    assert.deepEqual(JSON.parse(inFinal('CMD').at(-1)!.args), ['node', ...SERVICE_NODE_FLAGS, 'dist/main.js']);
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    assert.equal(pkg.scripts.start, ['node', ...SERVICE_NODE_FLAGS, 'dist/main.js'].join(' '));
    assert.match(
      readFileSync(join(root, 'scripts', 'demo.sh'), 'utf8'),
      /^node --max-semi-space-size=2 --optimize-for-size dist\/main\.js &$/m,
    );
  });

  it('says why it runs as root when it sets no USER', () => {
    const users = inFinal('USER');
    if (users.length > 0 && users.at(-1)!.args !== 'root' && users.at(-1)!.args !== '0') return;
    const why = comments.filter((comment) => comment.stage === finalStage).map((comment) => comment.text);
    assert.ok(
      why.some((text) => /\broot\b/i.test(text)) && why.some((text) => /CAP_[A-Z_]+/.test(text)),
      'no comment in the runtime stage explains running as root (and which capabilities it needs)',
    );
  });

  it('leaves build output, dependencies and git out of the build context', () => {
    const ignored = readFileSync(join(root, '.dockerignore'), 'utf8')
      .split('\n')
      .map((line) => line.trim().replace(/^\/|\/$/g, ''));
    for (const entry of ['node_modules', 'dist', 'dist-test', '.git', 'test-artifacts']) {
      assert.ok(ignored.includes(entry), `.dockerignore lacks ${entry}`);
    }
  });
});
