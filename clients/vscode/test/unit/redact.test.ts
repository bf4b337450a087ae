import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type * as vscode from 'vscode';
import { maskedLog } from '../../src/log';
import { SecretMask, redactText, redactUrl, urlSecrets } from '../../src/redact';
import { describeSettings } from '../../src/settings';

describe('redactUrl', () => {
  // The same table as the daemon's redact() (tests/memory/test_urls.py), so both logs agree.
  const cases: [string, string][] = [
    ['postgresql://u:secret@db:5432/app?sslmode=require', 'postgresql://u:***@db:5432/app?sslmode=require'],
    ['redis://:secret@[::1]:6379/0', 'redis://:***@[::1]:6379/0'],
    ['redis://u:secret@host:notaport/0', 'redis://u:***@host:notaport/0'],
    ['s3://AKIA:secret@bucket/p?endpoint=http://x', 's3://AKIA:***@bucket/p?endpoint=http://x'],
    ['postgresql://db/app?password=secret&application_name=d', 'postgresql://db/app?password=***&application_name=d'],
    ['file:///home/me/deskmate', 'file:///home/me/deskmate'],
  ];
  for (const [url, shown] of cases) it(`shows ${shown}`, () => assert.equal(redactUrl(url), shown));

  it('hides a password holding unencoded / ? # and @ up to the last @', () => {
    assert.equal(redactUrl('postgresql://me:a/b?c#d@e@db.example/app'), 'postgresql://me:***@db.example/app');
  });

  it('hides secret-looking query parameters, whatever their case', () => {
    assert.equal(
      redactUrl('https://h/v1?API_KEY=k1&sslPassword=k2&authToken=k3&client_secret=k4&mode=x'),
      'https://h/v1?API_KEY=***&sslPassword=***&authToken=***&client_secret=***&mode=x',
    );
  });

  it('leaves text without a scheme alone', () => {
    assert.equal(redactUrl('/home/me/data'), '/home/me/data');
    assert.equal(redactUrl('user:pw@host'), 'user:pw@host');
  });

  it('names the secrets of a URL', () => {
    assert.deepEqual(urlSecrets('redis://u:p@ss@h/0?token=t0k&db=1'), ['p@ss', 't0k']);
    assert.deepEqual(urlSecrets('http://h/v1'), []);
  });
});

describe('redactText', () => {
  it('redacts every URL in a line and every known secret', () => {
    const line = 'connect postgresql://u:hunter22@db/app failed; key sk-planted-1234 rejected';
    assert.equal(redactText(line, ['sk-planted-1234']), 'connect postgresql://u:***@db/app failed; key *** rejected');
  });

  it('finds a secret JSON-escaped or percent-encoded', () => {
    const secret = 'pa"ss/w@rd';
    const text = `{"storageUrl": "x"} "${JSON.stringify(secret).slice(1, -1)}" ${encodeURIComponent(secret)}`;
    assert.doesNotMatch(redactText(text, [secret]), /pa.{1,3}ss/);
  });

  it('does not mask very short strings, which would hide common words', () => {
    assert.equal(redactText('a key k', ['k']), 'a key k');
  });
});

/** A LogOutputChannel that keeps what is written to it. */
function recordingChannel(): { channel: vscode.LogOutputChannel; written: string[] } {
  const written: string[] = [];
  const keep = (...parts: unknown[]) => void written.push(parts.map(String).join(' '));
  const channel = {
    name: 'deskmate',
    logLevel: 1,
    onDidChangeLogLevel: () => ({ dispose() {} }),
    trace: keep,
    debug: keep,
    info: keep,
    warn: keep,
    error: keep,
    append: keep,
    appendLine: keep,
    replace: keep,
    clear() {},
    show() {},
    hide() {},
    dispose() {},
  } as unknown as vscode.LogOutputChannel;
  return { channel, written };
}

describe('the masked log', () => {
  it('never writes a planted API key or password, whoever logs them', () => {
    const key = 'sk-planted-key-0123456789';
    const password = 'planted/pass?w#rd@x';
    const settings = {
      apiKey: key,
      storageUrl: `postgresql://deskmate:${password}@db.example:5432/sessions?sslmode=require`,
      baseUrl: 'https://proxy.example/v1?token=planted-token-42',
    };
    const mask = new SecretMask();
    mask.learn(settings);
    const { channel, written } = recordingChannel();
    const log = maskedLog(channel, (text) => mask.mask(text));

    // Our own lines, vscode-languageclient's trace of `initialize` (the settings
    // in full, as JSON), the daemon's stderr quoting the model server, an error.
    log.info(`Starting deskmate lsp; settings: ${describeSettings(settings)}`);
    log.trace(`Sending request 'initialize - (0)'.\nParams: ${JSON.stringify({ initializationOptions: settings }, null, 4)}`);
    log.info(`2026-01-01 WARNING deskmate: the model server said: Incorrect API key provided: ${key}.`);
    log.error(new Error(`connect to ${settings.storageUrl} failed`), { apiKey: key });
    log.appendLine(`password=${encodeURIComponent(password)}`);
    // Once unset, a secret stays masked: lines quoting it may still arrive.
    mask.learn({});
    log.warn(`late line with ${key}`);

    const all = written.join('\n');
    for (const secret of [key, password, 'planted/pass', 'w#rd', 'planted-token-42', encodeURIComponent(password)]) {
      assert.equal(all.includes(secret), false, `${secret} in:\n${all}`);
    }
    assert.match(all, /postgresql:\/\/deskmate:\*\*\*@db\.example:5432\/sessions\?sslmode=require/);
    assert.match(all, /apiKey=\(from SecretStorage\)/);
  });
});
