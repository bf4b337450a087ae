// package.json is the settings' schema and their scope: what VS Code shows, and
// from which settings files it takes a value. Pinned here because a scope
// mistake is silent until a cloned repository uses it.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DAEMON_SETTINGS, MACHINE_SETTINGS } from '../../src/settings';

interface Property {
  type: string | string[];
  scope?: string;
  default?: unknown;
  minimum?: number;
  markdownDescription?: string;
}

const manifest = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'package.json'), 'utf8'));
const properties: Record<string, Property> = manifest.contributes.configuration.properties;

describe('package.json settings', () => {
  it('declares every daemon setting, and no other but serverCommand', () => {
    const declared = Object.keys(properties).map((name) => name.replace(/^deskmate\./, ''));
    assert.deepEqual(declared.sort(), [...Object.keys(DAEMON_SETTINGS), 'serverCommand'].sort());
  });

  it('gives machine scope to the settings that choose the program, the model server, the key, the store and expiry', () => {
    // `machine`: VS Code ignores them in a workspace's or folder's settings.json,
    // so a cloned repository cannot redirect the API key, run its own daemon or make history expire.
    assert.deepEqual([...MACHINE_SETTINGS].sort(), [
      'apiKeyEnv',
      'baseUrl',
      'compression',
      'dataDir',
      'encryption',
      'retentionDays',
      'serverCommand',
      'storageUrl',
      'trashDays',
    ]);
    for (const key of MACHINE_SETTINGS) assert.equal(properties[`deskmate.${key}`].scope, 'machine', key);
    for (const [name, property] of Object.entries(properties)) {
      if (!MACHINE_SETTINGS.includes(name.replace(/^deskmate\./, ''))) assert.equal(property.scope, 'resource', name);
    }
  });

  it('lists the machine settings as restricted in untrusted workspaces', () => {
    const untrusted = manifest.capabilities.untrustedWorkspaces;
    assert.equal(untrusted.supported, 'limited');
    assert.deepEqual([...untrusted.restrictedConfigurations].sort(), MACHINE_SETTINGS.map((key) => `deskmate.${key}`).sort());
  });

  it('declares maxTokens as an optional integer of at least 1', () => {
    const maxTokens = properties['deskmate.maxTokens'];
    assert.deepEqual(maxTokens.type, ['integer', 'null']);
    assert.equal(maxTokens.minimum, 1);
    assert.equal(maxTokens.default, null);
    assert.match(maxTokens.markdownDescription ?? '', /max_tokens/);
  });
});
