// One word for a resource's state, from its conditions (what the list pages and badges show).

import type { Condition } from './types';

export type Tone = 'ok' | 'busy' | 'bad' | 'idle';

export function condition(conditions: Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

const isTrue = (conditions: Condition[] | undefined, type: string) => condition(conditions, type)?.status === 'True';

export function jobState(conditions: Condition[] | undefined): { label: string; tone: Tone } {
  if (isTrue(conditions, 'Succeeded')) return { label: 'Succeeded', tone: 'ok' };
  if (isTrue(conditions, 'Failed')) return { label: 'Failed', tone: 'bad' };
  if (isTrue(conditions, 'Suspended')) return { label: 'Suspended', tone: 'idle' };
  if (isTrue(conditions, 'Running')) return { label: 'Running', tone: 'busy' };
  if (isTrue(conditions, 'Queued')) return { label: 'Queued', tone: 'idle' };
  return { label: 'Pending', tone: 'idle' };
}

export function jobFinished(conditions: Condition[] | undefined): boolean {
  return isTrue(conditions, 'Succeeded') || isTrue(conditions, 'Failed');
}

export function readyState(conditions: Condition[] | undefined): { label: string; tone: Tone } {
  const ready = condition(conditions, 'Ready');
  if (ready?.status === 'True') return { label: 'Ready', tone: 'ok' };
  if (isTrue(conditions, 'Failed') || isTrue(conditions, 'Degraded')) return { label: ready?.reason || 'Failed', tone: 'bad' };
  if (ready) return { label: ready.reason || 'Not ready', tone: 'busy' };
  return { label: 'Pending', tone: 'idle' };
}
