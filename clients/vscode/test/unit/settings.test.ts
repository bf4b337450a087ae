import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type SettingValue, daemonSettings, describeSettings, needsRestart, sameSettings } from '../../src/settings';

function reader(values: Record<string, unknown>, explicit = Object.keys(values)) {
  return (key: string): SettingValue => ({ explicit: explicit.includes(key), value: values[key] });
}

describe('daemonSettings', () => {
  it('sends only the settings the user set, leaving the rest to the daemon', () => {
    const read = reader(
      { model: 'test-model', baseUrl: 'http://127.0.0.1:9/v1', autoSave: true, maxHistoryTokens: 8000 },
      ['model', 'baseUrl'],
    );
    assert.deepEqual(daemonSettings(read), { model: 'test-model', baseUrl: 'http://127.0.0.1:9/v1' });
  });

  it('treats empty strings and nulls as unset', () => {
    const read = reader({ model: '  ', sessionId: '', temperature: null, maxRetries: 0, autoSave: false });
    assert.deepEqual(daemonSettings(read), { maxRetries: 0, autoSave: false });
  });

  it('maps every daemon setting the issue names', () => {
    const values = {
      model: 'm',
      baseUrl: 'http://h/v1',
      apiKeyEnv: 'MY_KEY',
      systemPrompt: 'Be brief.',
      autoSave: false,
      maxHistoryTokens: 100,
      maxTokens: 512,
      sessionId: 'shared',
      dataDir: '/tmp/d',
      storageUrl: 'redis://h:6379/0',
      temperature: 0.2,
      requestTimeout: 5,
      maxRetries: 0,
    };
    assert.deepEqual(daemonSettings(reader(values)), values);
  });

  it('ignores keys that are not daemon settings', () => {
    assert.deepEqual(daemonSettings(reader({ serverCommand: ['x'] })), {});
  });

  it('passes the API key from SecretStorage as apiKey', () => {
    assert.deepEqual(daemonSettings(reader({}), 'sk-secret'), { apiKey: 'sk-secret' });
    assert.deepEqual(daemonSettings(reader({}), ''), {});
  });

  it('passes a value of the wrong type on, for the daemon to name', () => {
    assert.deepEqual(daemonSettings(reader({ maxRetries: 'two' })), { maxRetries: 'two' });
  });
});

describe('needsRestart', () => {
  it('is false when settings are only added or changed', () => {
    assert.equal(needsRestart({ model: 'a' }, { model: 'b', baseUrl: 'x' }), false);
  });
  it('is true when a sent setting is unset (only a fresh start restores its default)', () => {
    assert.equal(needsRestart({ model: 'a', baseUrl: 'x' }, { model: 'a' }), true);
  });
  it('is true when the API key changes, appears or goes', () => {
    assert.equal(needsRestart({}, { apiKey: 'k' }), true);
    assert.equal(needsRestart({ apiKey: 'k' }, { apiKey: 'k2' }), true);
    assert.equal(needsRestart({ apiKey: 'k' }, {}), true);
    assert.equal(needsRestart({ apiKey: 'k' }, { apiKey: 'k', model: 'm' }), false);
  });
});

describe('sameSettings and describeSettings', () => {
  it('compares shallowly', () => {
    assert.equal(sameSettings({ a: 1, b: 'x' }, { b: 'x', a: 1 }), true);
    assert.equal(sameSettings({ a: 1 }, { a: 1, b: 2 }), false);
    assert.equal(sameSettings({ a: 1 }, { a: 2 }), false);
  });
  it('never shows the API key', () => {
    const text = describeSettings({ model: 'm', apiKey: 'sk-very-secret' });
    assert.doesNotMatch(text, /sk-very-secret/);
    assert.match(text, /model="m"/);
    assert.equal(describeSettings({}), '(daemon defaults)');
  });
});
