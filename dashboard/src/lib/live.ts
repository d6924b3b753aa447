// Live updates: App follows /api/v1/stream once; pages subscribe to the changes they show.

import type { ChangeEvent } from './types';

type Listener = (change: ChangeEvent) => void;
const listeners = new Set<Listener>();

/** Call fn for changes of `kind` (and of one object when name is given); returns unsubscribe,
 * which also cancels a debounced fn's pending call (a page that is gone must not fetch). */
export function onChange(
  kind: string,
  fn: Listener & { cancel?: () => void },
  namespace?: string,
  name?: string,
): () => void {
  const listener: Listener = (c) => {
    if (c.kind !== kind) return;
    if (name !== undefined && (c.name !== name || c.namespace !== namespace)) return;
    fn(c);
  };
  listeners.add(listener);
  return () => {
    listeners.delete(listener);
    fn.cancel?.();
  };
}

export function publish(change: ChangeEvent): void {
  for (const l of [...listeners]) l(change);
}

/** Collapse bursts of calls into one after `ms` of quiet. */
export function debounce(fn: () => void, ms = 500): (() => void) & { cancel: () => void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const run = () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
  return Object.assign(run, { cancel: () => clearTimeout(timer) });
}
