// The bearer token: taken once from the `#token=` fragment the local server prints (then removed
// from the address bar), or pasted in settings for cluster mode; kept in sessionStorage.

export const TOKEN_KEY = 'model-garden-token';

/** The fragment without `token=…`, and the token if there was one. */
export function splitToken(hash: string): { token: string | null; hash: string } {
  const body = hash.replace(/^#/, '');
  const parts = body.split('&');
  let token: string | null = null;
  const rest: string[] = [];
  for (const part of parts) {
    if (part.startsWith('token=')) token = decodeURIComponent(part.slice('token='.length)) || null;
    else if (part) rest.push(part);
  }
  const left = rest.join('&');
  return { token, hash: left ? `#${left}` : '#/' };
}

/** Move a `#token=` from the URL into storage; true when one was found. */
export function captureToken(win: Pick<Window, 'location' | 'history' | 'sessionStorage'> = window): boolean {
  const { token, hash } = splitToken(win.location.hash);
  if (token === null) return false;
  win.sessionStorage.setItem(TOKEN_KEY, token);
  const url = `${win.location.pathname}${win.location.search}${hash}`;
  win.history.replaceState(null, '', url);
  return true;
}

export function getToken(storage: Storage | undefined = globalThis.sessionStorage): string | null {
  try {
    return storage?.getItem(TOKEN_KEY) || null;
  } catch {
    return null;
  }
}

export function setToken(token: string | null, storage: Storage = globalThis.sessionStorage): void {
  if (token && token.trim()) storage.setItem(TOKEN_KEY, token.trim());
  else storage.removeItem(TOKEN_KEY);
}
