import { afterEach, describe, expect, it, vi } from 'vitest';
import { debounce, onChange, publish } from './live';

const change = { kind: 'InferenceDeployment', namespace: 'default', name: 'pets', type: 'MODIFIED' as const, resourceVersion: '2' };

describe('live updates', () => {
  afterEach(() => vi.useRealTimers());

  it('collapses a burst into one call', () => {
    vi.useFakeTimers();
    const fn = vi.fn();
    const stop = onChange('InferenceDeployment', debounce(fn, 300), 'default', 'pets');
    publish(change);
    publish(change);
    vi.advanceTimersByTime(300);
    expect(fn).toHaveBeenCalledTimes(1);
    stop();
  });

  it('a page that unsubscribed never fetches, not even a call already pending', () => {
    vi.useFakeTimers();
    const fn = vi.fn();
    const stop = onChange('InferenceDeployment', debounce(fn, 300), 'default', 'pets');
    publish(change);
    stop(); // the page is gone before the debounce fired
    vi.advanceTimersByTime(1000);
    publish(change);
    vi.advanceTimersByTime(1000);
    expect(fn).not.toHaveBeenCalled();
  });
});
