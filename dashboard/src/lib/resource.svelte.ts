// An async value with loading and error state, reloadable (a page's data).

import { errorMessage } from './api';

export class Resource<T> {
  data = $state<T | null>(null);
  error = $state<string | null>(null);
  loading = $state(true);
  private seq = 0;

  constructor(private readonly fetcher: () => Promise<T>) {}

  /** Fetch again; `quiet` keeps the current data on screen (a live refresh). */
  async load(quiet = false): Promise<void> {
    const mine = ++this.seq;
    if (!quiet) this.loading = true;
    try {
      const value = await this.fetcher();
      if (mine !== this.seq) return;
      this.data = value;
      this.error = null;
    } catch (err) {
      if (mine !== this.seq) return;
      if (!quiet || this.data === null) this.error = errorMessage(err);
    } finally {
      if (mine === this.seq) this.loading = false;
    }
  }
}

export function resource<T>(fetcher: () => Promise<T>): Resource<T> {
  const r = new Resource(fetcher);
  void r.load();
  return r;
}
