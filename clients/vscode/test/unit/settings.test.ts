import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type SettingValue,
  daemonSettings,
  describeSettings,
  readSetting,
  sameSettings,
  settingsChange,
} from '../../src/settings';

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

describe('readSetting', () => {
  it('takes the most specific scope that sets a setting', () => {
    assert.deepEqual(readSetting('model', { globalValue: 'g', workspaceValue: 'w' }), { explicit: true, value: 'w' });
    assert.deepEqual(readSetting('model', { globalValue: 'g', workspaceFolderValue: 'f' }), { explicit: true, value: 'f' });
    assert.deepEqual(readSetting('model', { globalValue: 'g' }), { explicit: true, value: 'g' });
    assert.deepEqual(readSetting('model', {}), { explicit: false, value: undefined });
  });

  it("takes a machine setting from the user's settings only, never the workspace's", () => {
    for (const key of ['serverCommand', 'baseUrl', 'apiKeyEnv', 'dataDir', 'storageUrl']) {
      const fromRepo = { workspaceValue: 'http://evil.example/v1', workspaceFolderValue: 'http://evil.example/v1' };
      assert.deepEqual(readSetting(key, fromRepo), { explicit: false, value: undefined }, key);
      assert.deepEqual(readSetting(key, { ...fromRepo, globalValue: 'mine' }), { explicit: true, value: 'mine' }, key);
    }
  });
});

describe('settingsChange', () => {
  it('sends added and changed settings as they are', () => {
    assert.deepEqual(settingsChange({ model: 'a' }, { model: 'b', baseUrl: 'x' }), { model: 'b', baseUrl: 'x' });
  });
  it('sends null for a setting that was unset, so the daemon goes back to its default without a restart', () => {
    assert.deepEqual(settingsChange({ model: 'a', baseUrl: 'x' }, { model: 'a' }), { model: 'a', baseUrl: null });
    assert.deepEqual(settingsChange({ maxTokens: 100 }, {}), { maxTokens: null });
  });
  it('sends a new or changed API key, and null for a removed one', () => {
    assert.deepEqual(settingsChange({}, { apiKey: 'k' }), { apiKey: 'k' });
    assert.deepEqual(settingsChange({ apiKey: 'k' }, { apiKey: 'k2' }), { apiKey: 'k2' });
    assert.deepEqual(settingsChange({ apiKey: 'k', model: 'm' }, { model: 'm' }), { model: 'm', apiKey: null });
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
  it('masks URL passwords and secret parameters, and shows unset settings', () => {
    const text = describeSettings({
      storageUrl: 'postgresql://me:pa/ss?w#rd@db.example/sessions?sslpassword=planted-ssl&sslmode=require',
      baseUrl: 'https://proxy.example/v1?api_key=planted-token',
      apiKey: null,
      maxTokens: null,
    });
    for (const secret of ['pa/ss', 'w#rd', 'planted-ssl', 'planted-token']) assert.doesNotMatch(text, new RegExp(secret));
    assert.match(text, /storageUrl="postgresql:\/\/me:\*\*\*@db\.example\/sessions\?sslpassword=\*\*\*&sslmode=require"/);
    assert.match(text, /baseUrl="https:\/\/proxy\.example\/v1\?api_key=\*\*\*"/);
    assert.match(text, /apiKey=\(removed\), maxTokens=\(unset\)/);
  });
});
