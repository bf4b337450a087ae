// The daemon's settings as VS Code holds them. Free of `vscode`: the caller
// passes a reader over the `deskmate` configuration section.

import { redactText } from './redact';

/** Daemon settings mirrored in package.json, by the JSON type the daemon checks. */
export const DAEMON_SETTINGS = {
  model: 'string',
  baseUrl: 'string',
  apiKeyEnv: 'string',
  systemPrompt: 'string',
  temperature: 'number',
  maxHistoryTokens: 'number',
  maxTokens: 'number',
  contextWindow: 'number',
  autoCompact: 'boolean',
  summaryModel: 'string',
  summaryTimeout: 'number',
  autoSave: 'boolean',
  autoTitle: 'boolean',
  sessionId: 'string',
  dataDir: 'string',
  storageUrl: 'string',
  requestTimeout: 'number',
  maxRetries: 'number',
  deltaWindowMs: 'number',
  redactSecrets: 'boolean',
  encryption: 'string',
  compression: 'string',
  retentionDays: 'number',
  trashDays: 'number',
} as const;

export type DaemonSettings = Record<string, unknown>;

/**
 * Settings that choose the program that runs, where sessions are kept, where
 * the API key is sent and when sessions expire. They have `machine` scope in package.json, and are read
 * from user (or remote machine) settings only, so a cloned repository's
 * .vscode/settings.json cannot point them elsewhere.
 */
export const MACHINE_SETTINGS: readonly string[] = [
  'serverCommand',
  'baseUrl',
  'apiKeyEnv',
  'dataDir',
  'storageUrl',
  // A cloned repository must not turn encryption off (or compression on) for your histories.
  'encryption',
  'compression',
  'retentionDays',
  'trashDays',
];

export interface SettingValue {
  /** True when the user set it in a scope that counts for it. */
  explicit: boolean;
  value: unknown;
}

/** What `WorkspaceConfiguration.inspect()` says about one setting (the part used here). */
export interface InspectedSetting {
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

/**
 * The value of `key` from `inspect()`: the most specific scope that sets it, or
 * for a machine setting the user's (global) value alone, whatever the
 * workspace's settings say.
 */
export function readSetting(key: string, seen: InspectedSetting | undefined): SettingValue {
  if (MACHINE_SETTINGS.includes(key)) return { explicit: seen?.globalValue !== undefined, value: seen?.globalValue };
  const value = seen?.workspaceFolderValue ?? seen?.workspaceValue ?? seen?.globalValue;
  return { explicit: value !== undefined, value };
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
 * What `workspace/didChangeConfiguration` must carry to go from `previous` to
 * `next`: `next`, plus `null` for every setting (the API key too) that was
 * sent and is now unset. The daemon takes `null` as "back to the environment
 * or the default", so no restart (which would drop unsaved sessions and
 * running answers) is needed.
 */
export function settingsChange(previous: DaemonSettings, next: DaemonSettings): DaemonSettings {
  const change: DaemonSettings = { ...next };
  for (const key of Object.keys(previous)) if (!(key in next)) change[key] = null;
  return change;
}

/** Shallow equality of two settings objects. */
export function sameSettings(a: DaemonSettings, b: DaemonSettings): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => key in b && a[key] === b[key]);
}

/**
 * Settings for the log: the API key never shown, URLs without their passwords
 * or secret parameters, `null` (sent for a removed setting) as "unset".
 */
export function describeSettings(settings: DaemonSettings): string {
  const shown = Object.entries(settings).map(([key, value]) => {
    if (key === 'apiKey') return `${key}=${value === null ? '(removed)' : '(from SecretStorage)'}`;
    if (value === null) return `${key}=(unset)`;
    return `${key}=${JSON.stringify(typeof value === 'string' ? redactText(value) : value)}`;
  });
  return shown.length ? shown.join(', ') : '(daemon defaults)';
}
