// The daemon's settings as VS Code holds them. Free of `vscode`: the caller
// passes a reader over the `deskmate` configuration section.

/** Daemon settings mirrored in package.json, by the JSON type the daemon checks. */
export const DAEMON_SETTINGS = {
  model: 'string',
  baseUrl: 'string',
  apiKeyEnv: 'string',
  systemPrompt: 'string',
  temperature: 'number',
  maxHistoryTokens: 'number',
  maxTokens: 'number',
  autoSave: 'boolean',
  sessionId: 'string',
  dataDir: 'string',
  storageUrl: 'string',
  requestTimeout: 'number',
  maxRetries: 'number',
} as const;

export type DaemonSettings = Record<string, unknown>;

export interface SettingValue {
  /** True when the user set it in some scope (user, workspace, folder). */
  explicit: boolean;
  value: unknown;
}

/**
 * The settings to send to the daemon: only those the user set, so the daemon's
 * own defaults (and its environment variables) apply to the rest. An empty
 * string counts as unset. The API key from SecretStorage travels as `apiKey`.
 */
export function daemonSettings(read: (key: string) => SettingValue, apiKey?: string): DaemonSettings {
  const settings: DaemonSettings = {};
  for (const [key, type] of Object.entries(DAEMON_SETTINGS)) {
    const { explicit, value } = read(key);
    if (!explicit || value === null || value === undefined) continue;
    // A value of the wrong type is sent anyway: the daemon names the bad
    // setting and keeps its previous value, which tells the user more than silence.
    if (typeof value === 'string' && value.trim() === '' && type === 'string') continue;
    settings[key] = value;
  }
  if (apiKey) settings.apiKey = apiKey;
  return settings;
}

/**
 * Whether going from `previous` to `next` needs a restart of the daemon rather
 * than a `didChangeConfiguration`: a setting that was sent and is now unset
 * must fall back to the daemon's default, which only a fresh start gives.
 */
export function needsRestart(previous: DaemonSettings, next: DaemonSettings): boolean {
  if (previous.apiKey !== next.apiKey) return true;
  return Object.keys(previous).some((key) => !(key in next));
}

/** Settings of this extension whose change means starting the daemon anew. */
export const RESTART_SETTINGS = ['deskmate.serverCommand'] as const;

/** Shallow equality of two settings objects. */
export function sameSettings(a: DaemonSettings, b: DaemonSettings): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => key in b && a[key] === b[key]);
}

/** Settings for the log, without the API key. */
export function describeSettings(settings: DaemonSettings): string {
  const shown = Object.entries(settings).map(([key, value]) =>
    key === 'apiKey' ? `${key}=(from SecretStorage)` : `${key}=${JSON.stringify(value)}`,
  );
  return shown.length ? shown.join(', ') : '(daemon defaults)';
}
