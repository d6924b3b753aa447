import { beforeEach, describe, expect, it } from 'vitest';
import { TOKEN_KEY, captureToken, getToken, setToken, splitToken } from './auth';

describe('splitToken', () => {
  it('takes the token out of the fragment', () => {
    expect(splitToken('#token=abc')).toEqual({ token: 'abc', hash: '#/' });
    expect(splitToken('#/jobs&token=a%2Fb')).toEqual({ token: 'a/b', hash: '#/jobs' });
    expect(splitToken('#/jobs')).toEqual({ token: null, hash: '#/jobs' });
  });
});

describe('captureToken', () => {
  beforeEach(() => sessionStorage.clear());

  it('stores the token and removes it from the address bar', () => {
    history.replaceState(null, '', '/#token=s3cret');
    expect(captureToken(window)).toBe(true);
    expect(sessionStorage.getItem(TOKEN_KEY)).toBe('s3cret');
    expect(location.hash).toBe('#/');
    expect(location.href).not.toContain('s3cret');
  });

  it('leaves a URL without a token alone', () => {
    history.replaceState(null, '', '/#/carbon');
    expect(captureToken(window)).toBe(false);
    expect(location.hash).toBe('#/carbon');
    expect(getToken()).toBeNull();
  });

  it('saves and clears a pasted token', () => {
    setToken('  pasted ');
    expect(getToken()).toBe('pasted');
    setToken('');
    expect(getToken()).toBeNull();
  });
});
