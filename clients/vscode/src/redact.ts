// Masking secrets before anything reaches the log. The URL rules mirror the
// daemon's `redact()` (server/deskmate/memory/urls.py), so both logs hide the
// same parts. Free of `vscode`.

import type { DaemonSettings } from './settings';

const MASK = '***';

// A query parameter whose name says it holds a secret (`?sslpassword=`, `&token=`).
const SECRET_PARAMETER = /((?:^|&)[^=&]*(?:password|secret|token|key)[^=&]*=)[^&]*/gi;

// A URL inside free text: a scheme, `://`, then everything up to white space.
// Taking the whole run is deliberate: a password may hold unencoded `/?#@`,
// and masking too much of a log line is better than too little.
const URL_IN_TEXT = /\b[a-z][a-z0-9+.-]*:\/\/\S*/gi;

// Shorter "secrets" (a test key, an empty password) would mask every
// occurrence of a common word; URLs are still masked by their shape.
const MIN_SECRET_LENGTH = 4;

interface UrlParts {
  scheme: string;
  user: string;
  password: string | undefined;
  /** `@` when there was a login, else empty. */
  at: string;
  location: string;
  /** `?` when there was a query, else empty. */
  mark: string;
  query: string;
}

function parts(url: string): UrlParts | undefined {
  const sep = url.indexOf('://');
  if (sep < 0) return undefined;
  const scheme = url.slice(0, sep);
  let rest = url.slice(sep + 3);
  // Everything up to the LAST '@' is the login, so an unencoded '@', '/', '?'
  // or '#' in a password cannot end it early and leave the rest in view.
  const lastAt = rest.lastIndexOf('@');
  const login = lastAt >= 0 ? rest.slice(0, lastAt) : '';
  const at = lastAt >= 0 ? '@' : '';
  rest = lastAt >= 0 ? rest.slice(lastAt + 1) : rest;
  const colon = login.indexOf(':');
  const user = colon >= 0 ? login.slice(0, colon) : login;
  const password = colon >= 0 ? login.slice(colon + 1) : undefined;
  const question = rest.indexOf('?');
  const location = question >= 0 ? rest.slice(0, question) : rest;
  const mark = question >= 0 ? '?' : '';
  const query = question >= 0 ? rest.slice(question + 1) : '';
  return { scheme, user, password, at, location, mark, query };
}

/**
 * `url` with its password, and the values of query parameters whose name
 * contains password, secret, token or key, replaced by `***`. Never throws;
 * text without `://` comes back unchanged.
 */
export function redactUrl(url: string): string {
  const p = parts(url);
  if (!p) return url;
  const login = p.password !== undefined ? `${p.user}:${MASK}@` : `${p.user}${p.at}`;
  const query = p.query.replace(SECRET_PARAMETER, `$1${MASK}`);
  return `${p.scheme}://${login}${p.location}${p.mark}${query}`;
}

/** The secret parts of `url`: its password and its secret-looking query values. */
export function urlSecrets(url: string): string[] {
  const p = parts(url);
  if (!p) return [];
  const found = p.password ? [p.password] : [];
  for (const match of p.query.matchAll(SECRET_PARAMETER)) {
    const value = p.query.slice((match.index ?? 0) + match[1].length, (match.index ?? 0) + match[0].length);
    if (value) found.push(value);
  }
  return found;
}

/**
 * `text` with every URL in it redacted and every one of `secrets` (also
 * JSON-escaped or percent-encoded, as a trace of a message would hold it)
 * replaced by `***`.
 */
export function redactText(text: string, secrets: Iterable<string> = []): string {
  let masked = text;
  for (const secret of secrets) {
    if (secret.length < MIN_SECRET_LENGTH) continue;
    for (const form of new Set([secret, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret)])) {
      masked = masked.split(form).join(MASK);
    }
  }
  return masked.replace(URL_IN_TEXT, (url) => redactUrl(url));
}

/**
 * The secrets of the daemon settings seen so far, to mask wherever they show up
 * in the log: the API key, and the passwords and secret parameters of URL
 * settings. A secret once seen stays masked after it is changed or unset, as
 * lines quoting it may still come.
 */
export class SecretMask {
  private readonly secrets = new Set<string>();

  learn(settings: DaemonSettings): void {
    for (const [key, value] of Object.entries(settings)) {
      if (typeof value !== 'string' || !value) continue;
      if (key === 'apiKey') this.secrets.add(value);
      else for (const secret of urlSecrets(value)) this.secrets.add(secret);
    }
  }

  mask(text: string): string {
    return redactText(text, this.secrets);
  }
}
