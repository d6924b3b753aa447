import { describe, expect, it } from 'vitest';
import { links, parseRoute, section } from './router';

describe('parseRoute', () => {
  it.each([
    ['', { page: 'overview' }],
    ['#/', { page: 'overview' }],
    ['#/jobs', { page: 'jobs' }],
    ['#/jobs/new', { page: 'newJob' }],
    ['#/jobs/team-a/chat-lora', { page: 'job', namespace: 'team-a', name: 'chat-lora' }],
    ['#/versions/default/chat-v1', { page: 'version', namespace: 'default', name: 'chat-v1' }],
    ['#/deployments/default/chat', { page: 'deployment', namespace: 'default', name: 'chat' }],
    ['#/datasets', { page: 'datasets' }],
    ['#/experiments', { page: 'experiments' }],
    ['#/carbon', { page: 'carbon' }],
    ['#/settings', { page: 'settings' }],
    ['#/nowhere', { page: 'notFound', path: '/nowhere' }],
    ['#/jobs/a', { page: 'notFound', path: '/jobs/a' }],
  ])('%s', (hash, route) => expect(parseRoute(hash)).toEqual(route));

  it('round-trips links, escaping names', () => {
    expect(parseRoute(links.job('ns', 'a b'))).toEqual({ page: 'job', namespace: 'ns', name: 'a b' });
    expect(links.deployment('default', 'chat')).toBe('#/deployments/default/chat');
  });

  it('puts detail pages under their list in the nav', () => {
    expect(section(parseRoute('#/jobs/new'))).toBe('jobs');
    expect(section(parseRoute('#/versions/a/b'))).toBe('versions');
    expect(section(parseRoute('#/'))).toBe('overview');
  });
});
