import { addSampleSite, type SiteTreeOptions } from './site-tree';
import { startTestApp, tempDir, type TestApp } from './test-app';

/**
 * The set-up of the provider tests: the app started on a fresh root (duplicity's target under it unless `env` says
 * otherwise), with the sample site `site1` (xattrs, ACLs, owners; see buildSiteTree) in its virtual root.
 */
export async function startAppWithSampleSite(
  env: Record<string, string> = {},
  options: SiteTreeOptions = {},
  root = tempDir(),
): Promise<{ t: TestApp; site: string; root: string }> {
  const t = await startTestApp({ DUPLICITY_TARGET: `file://${root}/target`, ...env }, root);
  const site = await addSampleSite(t.config.virtualRoot, options);
  return { t, site, root };
}
