// Hash routes (`#/jobs/ns/name`): parse a fragment into a Route and build links back.

export type Route =
  | { page: 'overview' }
  | { page: 'jobs' }
  | { page: 'newJob' }
  | { page: 'job'; namespace: string; name: string }
  | { page: 'versions' }
  | { page: 'version'; namespace: string; name: string }
  | { page: 'deployments' }
  | { page: 'deployment'; namespace: string; name: string }
  | { page: 'datasets' }
  | { page: 'experiments' }
  | { page: 'carbon' }
  | { page: 'settings' }
  | { page: 'notFound'; path: string };

const LISTS = {
  jobs: 'job',
  versions: 'version',
  deployments: 'deployment',
} as const;

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '').split('?')[0].split('&')[0];
  const parts = path
    .split('/')
    .filter(Boolean)
    .map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return p;
      }
    });
  if (parts.length === 0) return { page: 'overview' };
  const [head, a, b] = parts;
  if (parts.length === 1) {
    switch (head) {
      case 'jobs':
      case 'versions':
      case 'deployments':
      case 'datasets':
      case 'experiments':
      case 'carbon':
      case 'settings':
        return { page: head };
    }
  }
  if (head === 'jobs' && a === 'new' && parts.length === 2) return { page: 'newJob' };
  if (parts.length === 3 && head in LISTS) {
    return { page: LISTS[head as keyof typeof LISTS], namespace: a, name: b };
  }
  return { page: 'notFound', path };
}

const enc = encodeURIComponent;

export const links = {
  overview: () => '#/',
  jobs: () => '#/jobs',
  newJob: () => '#/jobs/new',
  job: (ns: string, name: string) => `#/jobs/${enc(ns)}/${enc(name)}`,
  versions: () => '#/versions',
  version: (ns: string, name: string) => `#/versions/${enc(ns)}/${enc(name)}`,
  deployments: () => '#/deployments',
  deployment: (ns: string, name: string) => `#/deployments/${enc(ns)}/${enc(name)}`,
  datasets: () => '#/datasets',
  experiments: () => '#/experiments',
  carbon: () => '#/carbon',
  settings: () => '#/settings',
};

/** The top-level section a route belongs to (for the nav's current item). */
export function section(route: Route): string {
  switch (route.page) {
    case 'job':
    case 'newJob':
      return 'jobs';
    case 'version':
      return 'versions';
    case 'deployment':
      return 'deployments';
    case 'notFound':
      return '';
    default:
      return route.page;
  }
}

export const NAV: { key: string; label: string; href: string }[] = [
  { key: 'overview', label: 'Overview', href: links.overview() },
  { key: 'jobs', label: 'Fine-tune jobs', href: links.jobs() },
  { key: 'versions', label: 'Model versions', href: links.versions() },
  { key: 'deployments', label: 'Deployments', href: links.deployments() },
  { key: 'datasets', label: 'Datasets', href: links.datasets() },
  { key: 'experiments', label: 'Experiments', href: links.experiments() },
  { key: 'carbon', label: 'Carbon', href: links.carbon() },
  { key: 'settings', label: 'Settings', href: links.settings() },
];
