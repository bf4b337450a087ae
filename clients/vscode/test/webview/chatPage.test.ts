// The chat view's real page (real HTML, real Content-Security-Policy, the
// bundled dist/webview.js) in headless Chromium. The extension side is
// simulated: messages are posted into the page, and what the page posts back
// is recorded by a stand-in for acquireVsCodeApi.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { ChatEntry, FromWebview, ToWebview } from '../../src/messages';
import { chatPageHtml } from '../../src/webviewHtml';
import { eventually, launchChromium } from '../support/browser';

const root = join(__dirname, '..', '..', '..');

let server: Server;
let origin: string;
let browser: Browser;
let page: Page;
/** Problems the page reported: script errors and Content-Security-Policy violations. */
let problems: string[];

function serve(): Promise<Server> {
  const files: Record<string, [string, string]> = {
    '/dist/webview.js': [join(root, 'dist', 'webview.js'), 'text/javascript'],
    '/media/chat.css': [join(root, 'media', 'chat.css'), 'text/css'],
  };
  const http = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path === '/favicon.ico') {
      response.writeHead(204).end(); // the browser asks by itself; VS Code's webviews have none
      return;
    }
    if (path === '/') {
      const html = chatPageHtml({
        cspSource: origin,
        scriptUri: `${origin}/dist/webview.js`,
        styleUri: `${origin}/media/chat.css`,
      });
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
      return;
    }
    const file = files[path];
    if (!file) {
      problems.push(`request for ${path}`);
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': file[1] }).end(readFileSync(file[0]));
  });
  return new Promise((resolve) => http.listen(0, '127.0.0.1', () => resolve(http)));
}

/** Posts a message as the extension would, and returns once the page has handled it. */
async function send(message: ToWebview): Promise<void> {
  await page.evaluate(
    (m) =>
      new Promise<void>((resolve) => {
        // Messages from one source arrive in order: once the marker is seen, `m` was handled.
        const marker = `handled-${Math.random()}`;
        const onMessage = (event: MessageEvent) => {
          if (event.data !== marker) return;
          window.removeEventListener('message', onMessage);
          resolve();
        };
        window.addEventListener('message', onMessage);
        window.postMessage(m, '*');
        window.postMessage(marker, '*');
      }),
    message,
  );
}

async function posted(): Promise<FromWebview[]> {
  return page.evaluate(() => (window as unknown as { __posted: FromWebview[] }).__posted);
}

async function lastPosted(): Promise<FromWebview | undefined> {
  return (await posted()).at(-1);
}

const text = (selector: string) => page.locator(selector).innerText();

const SESSIONS = [
  { sessionId: 'proj-1', title: 'Why is the build slow', messageCount: 4, active: true },
  { sessionId: 'proj-2', title: 'Parser bug', messageCount: 2, active: false },
  { sessionId: 'proj-3', title: 'Release notes', messageCount: 1, active: false },
];

async function showSession(entries: ChatEntry[] = []) {
  await send({ type: 'status', state: 'running' });
  await send({ type: 'session', sessionId: 'proj-1', title: 'Why is the build slow', entries, sessions: SESSIONS, stored: true });
}

before(async () => {
  server = await serve();
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => server?.close(resolve));
});

beforeEach(async () => {
  problems = [];
  page = await browser.newPage({ viewport: { width: 420, height: 800 } });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  await page.addInitScript(() => {
    const w = window as unknown as Record<string, unknown>;
    w.__posted = [];
    w.acquireVsCodeApi = () => ({
      postMessage: (message: unknown) => (w.__posted as unknown[]).push(message),
      getState: () => undefined,
      setState: () => undefined,
    });
    document.addEventListener('securitypolicyviolation', (event) => {
      (w.__violations = (w.__violations as string[]) ?? []).push(`${event.violatedDirective} ${event.blockedURI}`);
    });
  });
  await page.goto(`${origin}/`);
  await eventually(async () => (await posted()).length > 0, 'the page to post "ready"');
});

// Every test also checks that the page reported no script error and no CSP violation.
afterEach(async () => {
  const violations = await page.evaluate(() => (window as unknown as { __violations?: string[] }).__violations ?? []);
  await page.close();
  assert.deepEqual([...problems, ...violations], [], 'the page reported no errors and no CSP violations');
});

describe('chat page in Chromium', () => {
  it('says it is ready, and shows the daemon starting, then failing with Retry', async () => {
    assert.deepEqual(await posted(), [{ type: 'ready' }]);
    assert.equal(await text('#status-text'), 'Starting deskmate…');
    await send({ type: 'status', state: 'failed', message: 'deskmate could not start: no "deskmate" on PATH. Fix: install it.' });
    assert.match(await text('#status-text'), /could not start.*Fix: install it/);
    await page.click('#restart');
    assert.deepEqual(await lastPosted(), { type: 'restart' });
    await send({ type: 'status', state: 'running' });
    assert.equal(await page.locator('#status').isHidden(), true);
  });

  it('shows the history as Markdown, questions as typed text, code blocks with Copy and Insert', async () => {
    await showSession([
      { role: 'user', content: 'What is **this**? <b>raw</b>' },
      {
        role: 'assistant',
        content: '## Answer\n\nIt is *fine*:\n\n- one\n- two\n\n```python\ndef f():\n    return 1\n```\n\nSee [docs](https://example.org).',
      },
      { role: 'user', content: 'and then?' },
      { role: 'assistant', content: 'Half an ans', status: 'interrupted' },
    ]);
    assert.equal(await page.locator('.message').count(), 4);
    assert.equal(await text('.message.user >> nth=0 >> .message-body'), 'What is **this**? <b>raw</b>');
    assert.equal(await page.locator('.message.user b').count(), 0);
    const answer = page.locator('.message.assistant').first();
    assert.equal(await answer.locator('h2').innerText(), 'Answer');
    assert.equal(await answer.locator('em').innerText(), 'fine');
    assert.equal(await answer.locator('li').count(), 2);
    assert.equal((await answer.locator('.code-block pre code').innerText()).trimEnd(), 'def f():\n    return 1');
    assert.equal(await answer.locator('.code-language').innerText(), 'python');
    assert.equal(await answer.locator('a').getAttribute('href'), 'https://example.org');
    assert.match(await text('.message.assistant.interrupted .message-note'), /interrupted/);

    await answer.locator('button[data-action="copy"]').click();
    assert.deepEqual(await lastPosted(), { type: 'copy', text: 'def f():\n    return 1' });
    await answer.locator('button[data-action="insert"]').click();
    assert.deepEqual(await lastPosted(), { type: 'insert', text: 'def f():\n    return 1' });
  });

  it('sends the prompt with Enter or Send, keeps Shift+Enter for new lines', async () => {
    await showSession();
    await page.focus('#prompt');
    await page.keyboard.type('first line');
    await page.keyboard.press('Shift+Enter');
    await page.keyboard.type('second line');
    assert.equal((await posted()).length, 1);
    await page.keyboard.press('Enter');
    assert.deepEqual(await lastPosted(), { type: 'ask', question: 'first line\nsecond line' });
    assert.equal(await page.inputValue('#prompt'), '');
    await page.keyboard.press('Enter'); // empty prompt: nothing is sent
    assert.equal((await posted()).length, 2);
    await page.fill('#prompt', 'by the button');
    await page.click('#send');
    assert.deepEqual(await lastPosted(), { type: 'ask', question: 'by the button' });
  });

  it('renders the answer as it streams, across a code fence split between chunks', async () => {
    await showSession();
    await send({ type: 'askStarted', askId: 'a1', question: 'Show me code' });
    assert.equal(await text('.message.user .message-body'), 'Show me code');
    assert.equal(await page.locator('#stop').isVisible(), true);
    assert.equal(await page.locator('#send').isDisabled(), true);
    assert.equal(await page.locator('#session-select').isDisabled(), true);

    await send({ type: 'askDelta', askId: 'a1', delta: 'Here is **bold' });
    await send({ type: 'askDelta', askId: 'a1', delta: '** code:\n\n```js\nconsole.log(' });
    const streamingAnswer = page.locator('.message.assistant.streaming');
    await eventually(async () => (await streamingAnswer.locator('strong').count()) === 1, 'bold text mid-stream');
    await eventually(
      async () => (await streamingAnswer.locator('pre code').innerText()).includes('console.log('),
      'an open code fence rendered as code mid-stream',
    );
    await send({ type: 'askDelta', askId: 'a1', delta: '1);\n```\n\nDone.' });
    await send({ type: 'askDelta', askId: 'other', delta: 'NOT MINE' });
    await eventually(async () => (await streamingAnswer.innerText()).includes('Done.'), 'the last chunk');
    await send({ type: 'askFinished', askId: 'a1', answer: 'Here is **bold** code:\n\n```js\nconsole.log(1);\n```\n\nDone.', interrupted: false });

    const done = page.locator('.message.assistant').last();
    assert.equal(await done.getAttribute('class'), 'message assistant');
    assert.equal((await done.locator('pre code').innerText()).trimEnd(), 'console.log(1);');
    assert.doesNotMatch(await done.innerText(), /NOT MINE/);
    assert.equal(await page.locator('#stop').isHidden(), true);
    assert.equal(await page.locator('#send').isEnabled(), true);
    assert.equal(await page.locator('#session-select').isEnabled(), true);
  });

  it('Stop (button or Escape) asks the extension to cancel; the partial answer stays, marked', async () => {
    await showSession();
    await send({ type: 'askStarted', askId: 'a2', question: 'Long answer please' });
    await send({ type: 'askDelta', askId: 'a2', delta: 'The first part' });
    await page.click('#stop');
    assert.deepEqual(await lastPosted(), { type: 'stop' });
    await page.focus('#prompt');
    await page.keyboard.press('Escape');
    assert.deepEqual((await posted()).slice(-2), [{ type: 'stop' }, { type: 'stop' }]);
    await send({ type: 'askFinished', askId: 'a2', answer: 'The first part', interrupted: true });
    const last = page.locator('.message.assistant').last();
    assert.equal(await last.locator('.message-body').innerText(), 'The first part');
    assert.match(await last.locator('.message-note').innerText(), /Stopped/);
    assert.equal(await page.locator('#stop').isHidden(), true);
    await page.keyboard.press('Escape'); // nothing running: nothing sent
    assert.equal((await posted()).filter((m) => m.type === 'stop').length, 2);
  });

  it('shows errors inline: a failed answer keeps its partial text, other errors stand alone', async () => {
    await showSession();
    await send({ type: 'askStarted', askId: 'a3', question: 'q' });
    await send({ type: 'askDelta', askId: 'a3', delta: 'partial text' });
    await send({ type: 'askFailed', askId: 'a3', message: 'The model server failed (HTTP 500). Try again later.' });
    const failed = page.locator('.message.assistant').last();
    assert.equal(await failed.locator('.message-body').innerText(), 'partial text');
    assert.equal(await failed.locator('[role="alert"]').innerText(), 'The model server failed (HTTP 500). Try again later.');
    assert.equal(await page.locator('#send').isEnabled(), true);
    // As the extension sends it: the stored history (with the partial answer) first, then the error.
    await send({ type: 'askStarted', askId: 'a4', question: 'again' });
    await send({
      type: 'session',
      sessionId: 'proj-1',
      title: 'Why is the build slow',
      entries: [
        { role: 'user', content: 'again' },
        { role: 'assistant', content: '', status: 'interrupted' },
      ],
      sessions: SESSIONS,
      stored: true,
    });
    await send({ type: 'askFailed', askId: 'a4', message: 'The model server rejected the API key (HTTP 401).' });
    assert.equal(await page.locator('#transcript > :last-child').getAttribute('role'), 'alert');
    assert.equal(await text('#transcript > :last-child'), 'The model server rejected the API key (HTTP 401).');
    assert.equal(await page.locator('.message.assistant.interrupted').count(), 1);
    // A stored answer carrying its reason shows it in the entry, as live; the askFailed that
    // follows the refresh adds nothing beside it.
    const reason = 'Cannot reach the model server at http://127.0.0.1:9/v1. Is it running?';
    await send({ type: 'askStarted', askId: 'a5', question: 'once more' });
    await send({
      type: 'session',
      sessionId: 'proj-1',
      title: 'Why is the build slow',
      entries: [
        { role: 'user', content: 'once more' },
        { role: 'assistant', content: '', status: 'interrupted', error: reason },
      ],
      sessions: SESSIONS,
      stored: true,
    });
    await send({ type: 'askFailed', askId: 'a5', message: reason });
    const reloaded = page.locator('.message.assistant.interrupted').last();
    assert.equal(await reloaded.locator('[role="alert"]').innerText(), reason);
    assert.equal(await reloaded.locator('.message-note').count(), 0);
    assert.equal(await page.locator('#transcript > .error').count(), 0);
    await send({ type: 'error', message: 'Session "x" does not exist' });
    assert.equal(await page.locator('#transcript > .error[role="alert"]').last().innerText(), 'Session "x" does not exist');
  });

  it('neutralises XSS payloads in model output, streamed and stored', async () => {
    const payloads = [
      '<script>window.__xss = "script"</script>',
      '<img src=x onerror="window.__xss = \'img\'">',
      '<svg onload="window.__xss = \'svg\'"></svg>',
      '<iframe srcdoc="<script>parent.__xss=\'iframe\'</script>"></iframe>',
      '[click me](javascript:window.__xss=\'link\')',
      '[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)',
      '[cmd](command:workbench.action.terminal.new)',
      '![tracker](https://evil.example/pixel.png)',
      '<a href="javascript:window.__xss=1">raw link</a>',
      '<style>body { display: none }</style>',
      '<form action="https://evil.example"><input name="q"></form>',
      '`<img src=x onerror=window.__xss=1>` in code',
      '```html\n<script>window.__xss = "fence"</script>\n```',
      '<div id="transcript">clobber</div><details open ontoggle="window.__xss=\'details\'">',
    ];
    const output = payloads.join('\n\n');
    await showSession([{ role: 'assistant', content: output }]);
    await send({ type: 'askStarted', askId: 'x1', question: '<img src=x onerror="window.__xss=\'question\'">' });
    for (const part of output.match(/[\s\S]{1,7}/g) ?? []) await send({ type: 'askDelta', askId: 'x1', delta: part });
    await eventually(async () => (await page.locator('.message.assistant').last().innerText()).includes('in code'), 'the streamed payloads');
    await send({ type: 'askFinished', askId: 'x1', answer: output, interrupted: false });
    await page.waitForTimeout(300); // give any injected handler the chance to run

    assert.equal(await page.evaluate(() => (window as unknown as { __xss?: unknown }).__xss), undefined);
    const transcript = page.locator('#transcript');
    for (const tag of ['script', 'img', 'svg', 'iframe', 'style', 'form', 'input', 'details[ontoggle]']) {
      assert.equal(await transcript.locator(tag).count(), 0, `no <${tag}> in the transcript`);
    }
    const attributes = await page.evaluate(() =>
      Array.from(document.querySelectorAll('#transcript *')).flatMap((element) =>
        Array.from(element.attributes)
          .filter((a) => /^on/i.test(a.name) || /^\s*(javascript|data|command|vbscript):/i.test(a.value) || a.name === 'style' || a.name === 'id')
          .map((a) => `${element.tagName} ${a.name}=${a.value}`),
      ),
    );
    assert.deepEqual(attributes, []);
    // The payloads are shown, as text, not lost.
    const shown = await transcript.innerText();
    assert.match(shown, /<script>window.__xss = "script"<\/script>/);
    assert.match(shown, /<img src=x onerror="window.__xss='question'">/);
    // javascript:, data: and command: links lose their href; web links (linkified text) stay.
    const hrefs = await transcript.locator('a[href]').evaluateAll((links) => links.map((a) => a.getAttribute('href')));
    assert.ok(hrefs.every((href) => /^https?:/.test(href ?? '')), `only web links survive: ${hrefs.join(' ')}`);
    assert.ok((await transcript.locator('a:not([href])').count()) >= 2, 'the command: links are still shown, inert');
    assert.equal(await page.locator('#transcript').count(), 1, 'no element clobbers the transcript id');
  });

  it('session picker: switch, new, delete without a question, all from the keyboard', async () => {
    await showSession([{ role: 'user', content: 'hello' }]);
    const options = await page.locator('#session-select option').allInnerTexts();
    assert.deepEqual(options, ['Why is the build slow (4)', 'Parser bug (2)', 'Release notes (1)']);
    assert.equal(await page.inputValue('#session-select'), 'proj-1');

    await page.selectOption('#session-select', 'proj-2');
    assert.deepEqual(await lastPosted(), { type: 'switchSession', sessionId: 'proj-2' });

    await page.focus('#new-session');
    await page.keyboard.press('Enter');
    assert.deepEqual(await lastPosted(), { type: 'newSession' });

    // Delete: to the trash at once (the extension's notification offers Undo).
    await send({ type: 'session', sessionId: 'proj-1', title: 'Why is the build slow', entries: [], sessions: SESSIONS, stored: true });
    await page.focus('#delete-session');
    await page.keyboard.press('Enter');
    assert.deepEqual(await lastPosted(), { type: 'deleteSession', sessionId: 'proj-1' });
    assert.match((await page.getAttribute('#delete-session', 'title')) ?? '', /trash.*Undo/);
  });

  it('lists a new, not yet stored session, and says when nothing is stored', async () => {
    await send({ type: 'session', sessionId: 'fresh-1', title: '', entries: [], sessions: SESSIONS.slice(1), stored: true });
    assert.equal(await page.inputValue('#session-select'), 'fresh-1');
    // Named as a person would, not by its id.
    assert.equal(await page.locator('#session-select option:checked').innerText(), 'New conversation');
    assert.match(await text('#transcript'), /No messages yet/);
    await send({ type: 'session', sessionId: null, title: '', entries: [], sessions: [], stored: false });
    assert.match(await text('#transcript'), /will not be stored/);
    assert.equal(await page.locator('#delete-session').isDisabled(), true);
  });

  it('message actions: Copy, Fork from here, Edit in place (Enter resends, Escape cancels), Retry; the fork links to its source', async () => {
    await send({ type: 'status', state: 'running' });
    const entries = [
      { id: 'q1', role: 'user' as const, content: 'first' },
      { id: 'a1', role: 'assistant' as const, content: 'one' },
      { id: 'q2', role: 'user' as const, content: 'second' },
      { id: 'a2', role: 'assistant' as const, content: 'two' },
    ];
    await send({ type: 'session', sessionId: 'proj-1', title: 'Why is the build slow', entries, sessions: SESSIONS, stored: true, forkedFrom: null, forkCount: 2 });
    assert.equal(await page.locator('#lineage').isVisible(), true);
    assert.match(await text('#lineage'), /2 forks made from this session/);
    const answer = page.locator('.message.assistant').first();
    assert.deepEqual(await answer.locator('.message-action').allInnerTexts(), ['Copy', 'Fork from here', 'Pin', 'Retry']);
    assert.deepEqual(await page.locator('.message.user').first().locator('.message-action').allInnerTexts(), ['Copy', 'Fork from here', 'Pin', 'Edit']);

    await answer.locator('button[data-message-action="copy"]').click();
    assert.deepEqual(await lastPosted(), { type: 'copy', text: 'one' });
    await answer.locator('button[data-message-action="fork"]').click();
    assert.deepEqual(await lastPosted(), { type: 'fork', messageId: 'a1' });
    await page.locator('.message.assistant').nth(1).locator('button[data-message-action="retry"]').click();
    assert.deepEqual(await lastPosted(), { type: 'retry', messageId: 'a2' });

    // Edit: the question becomes a text box; Escape puts it back, Enter resends.
    const question = page.locator('.message.user').nth(1);
    await question.locator('button[data-message-action="edit"]').click();
    const box = question.locator('textarea.edit-box');
    assert.equal(await box.inputValue(), 'second');
    await box.press('Escape');
    assert.equal(await question.locator('textarea').count(), 0);
    assert.equal(await question.locator('.message-body').innerText(), 'second');
    await question.locator('button[data-message-action="edit"]').click();
    await box.fill('second, reworded');
    await box.press('Shift+Enter');
    await box.press('Enter');
    assert.deepEqual(await lastPosted(), { type: 'edit', messageId: 'q2', question: 'second, reworded' });

    // The resent question replaces the old one and what followed; the answer streams below it.
    await send({ type: 'askStarted', askId: 'r1', question: 'second, reworded', replaceFrom: 'q2' });
    assert.deepEqual(await page.locator('.message .message-body').allInnerTexts(), ['first', 'one', 'second, reworded', '']);
    assert.equal(await page.locator('.message-actions').first().isVisible(), false, 'no actions while an answer streams');
    await send({ type: 'askFinished', askId: 'r1', answer: 'better', interrupted: false });

    // Shown as a fork: the header names the source and goes back to it.
    await send({
      type: 'session',
      sessionId: 'proj-4',
      title: 'Why is the build slow (fork)',
      entries: [entries[0], entries[1], { id: 'q3', role: 'user', content: 'second, reworded' }, { id: 'a3', role: 'assistant', content: 'better' }],
      sessions: SESSIONS,
      stored: true,
      forkedFrom: { sessionId: 'proj-1', messageId: 'q2', title: 'Why is the build slow' },
      forkCount: 0,
    });
    assert.match(await text('#lineage'), /Forked from\s+Why is the build slow/);
    await page.click('#lineage-source');
    assert.deepEqual(await lastPosted(), { type: 'switchSession', sessionId: 'proj-1' });
    await send({ type: 'session', sessionId: 'proj-2', title: 'Parser bug', entries: [], sessions: SESSIONS, stored: true, forkedFrom: null, forkCount: 0 });
    assert.equal(await page.locator('#lineage').isHidden(), true);
  });

  it('adds turns stored in another window below, keeping the reader where they are (following at the end)', async () => {
    const long = Array.from({ length: 60 }, (_, i) => `line ${i}`).join('\n\n');
    await showSession([
      { role: 'user', content: 'first' },
      { role: 'assistant', content: long },
    ]);
    const scrollTop = () => page.locator('#transcript').evaluate((e) => e.scrollTop);
    await page.locator('#transcript').evaluate((e) => {
      e.scrollTop = 0;
    });
    await send({
      type: 'appendEntries',
      sessionId: 'proj-1',
      entries: [
        { id: 'q9', role: 'user', content: 'from the terminal' },
        { id: 'a9', role: 'assistant', content: long },
      ],
    });
    assert.equal(await page.locator('.message').count(), 4);
    assert.equal(await text('.message.user >> nth=1 >> .message-body'), 'from the terminal');
    assert.equal(await scrollTop(), 0, 'scrolled up: stays');
    await send({ type: 'appendEntries', sessionId: 'another-session', entries: [{ id: 'x', role: 'user', content: 'no' }] });
    assert.equal(await page.locator('.message').count(), 4, 'another session\'s turns are not shown');
    await page.locator('#transcript').evaluate((e) => {
      e.scrollTop = e.scrollHeight;
    });
    await send({ type: 'appendEntries', sessionId: 'proj-1', entries: [{ id: 'q10', role: 'user', content: 'at the end' }] });
    const atEnd = await page.locator('#transcript').evaluate((e) => e.scrollHeight - e.scrollTop - e.clientHeight);
    assert.ok(atEnd < 5, 'at the end: follows');
  });

  it('context chips: the editor code and added files above the prompt, each removable; + add context', async () => {
    await showSession();
    await send({
      type: 'contextChips',
      chips: [
        { id: 'editor', label: 'src/calc.py:8-12 (selection)', kind: 'editor' },
        { id: 'file:///p/util.py', label: 'util.py', kind: 'file' },
      ],
    });
    assert.deepEqual(await page.locator('#context-chips .chip > span').allInnerTexts(), ['src/calc.py:8-12 (selection)', 'util.py']);
    await page.locator('#context-chips .chip', { hasText: 'util.py' }).locator('button.chip-remove').click();
    assert.deepEqual(await lastPosted(), { type: 'removeContext', id: 'file:///p/util.py' });
    await page.click('#add-context');
    assert.deepEqual(await lastPosted(), { type: 'addContext' });
  });

  it('@ in the prompt completes workspace files from the keyboard and adds the file', async () => {
    await showSession();
    await page.click('#prompt');
    await page.keyboard.type('how does @cal');
    await eventually(async () => JSON.stringify(await lastPosted()) === JSON.stringify({ type: 'suggestFiles', query: 'cal' }), 'a request for files');
    await send({
      type: 'fileSuggestions',
      query: 'cal',
      files: [
        { uri: 'file:///p/src/calc.py', label: 'src/calc.py' },
        { uri: 'file:///p/calendar.py', label: 'calendar.py' },
      ],
    });
    assert.deepEqual(await page.locator('#file-suggestions li').allInnerTexts(), ['src/calc.py', 'calendar.py']);
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('Enter');
    assert.equal(await page.inputValue('#prompt'), 'how does @src/calc.py ');
    assert.deepEqual(await lastPosted(), { type: 'attachFile', uri: 'file:///p/src/calc.py', label: 'src/calc.py' });
    assert.equal(await page.locator('#file-suggestions').isHidden(), true);
    await page.keyboard.type('work?');
    await page.keyboard.press('Enter');
    assert.deepEqual(await lastPosted(), { type: 'ask', question: 'how does @src/calc.py work?' });
  });

  it('shows what went along with each question, live and in the stored history', async () => {
    await showSession([
      { role: 'user', content: 'stored one', context: ['calc.py:8-12', 'util.py'] },
      { role: 'assistant', content: 'answer' },
    ]);
    assert.deepEqual(await page.locator('.message.user .context-used .chip').allInnerTexts(), ['calc.py:8-12', 'util.py']);
    await send({ type: 'askStarted', askId: 'c1', question: 'live one', context: ['main.py:1-40'] });
    assert.deepEqual(await page.locator('.message.user').last().locator('.context-used .chip').allInnerTexts(), ['main.py:1-40']);
    assert.match(await page.locator('.message.user').last().locator('.context-used').innerText(), /^with/);
  });

  it('a failed answer shows its reason with Retry beside it, which asks the question again', async () => {
    const reason = 'The model server failed (HTTP 500). Try again later.';
    await showSession([
      { id: 'q1', role: 'user', content: 'why?' },
      { id: 'a1', role: 'assistant', content: '', status: 'interrupted', error: reason },
    ]);
    const failed = page.locator('.message.assistant.failed');
    assert.equal(await failed.locator('[role="alert"]').innerText(), reason);
    await failed.locator('button.retry-failed').click();
    assert.deepEqual(await lastPosted(), { type: 'retry', messageId: 'a1' });
  });

  it("the header's model button names the workspace's model and asks to pick another", async () => {
    await send({ type: 'status', state: 'running' });
    await send({ type: 'session', sessionId: 'proj-1', title: 'T', entries: [], sessions: SESSIONS, stored: true, model: 'qwen2.5-coder-7b' });
    assert.equal(await text('#model'), 'qwen2.5-coder-7b');
    await page.click('#model');
    assert.deepEqual(await lastPosted(), { type: 'pickModel' });
  });

  it('a summary shows as a banner "N earlier messages summarized — Show / Undo"; messages can be pinned', async () => {
    await send({ type: 'status', state: 'running' });
    const entries = [
      { id: 'q1', role: 'user' as const, content: 'RULE: tabs', pinned: true },
      { id: 'a1', role: 'assistant' as const, content: 'one' },
      { id: 'q2', role: 'user' as const, content: 'second' },
      { id: 'a2', role: 'assistant' as const, content: 'two' },
    ];
    const summary = { summaryId: 's1', messageCount: 2, text: 'The user wants **tabs**.', toMessageId: 'a1' };
    await send({ type: 'session', sessionId: 'proj-1', title: 'Why is the build slow', entries, sessions: SESSIONS, stored: true, summary, nextAskTokens: 120 });
    assert.equal(await page.locator('#summary-banner').isVisible(), true);
    assert.match(await text('#summary-banner'), /2 earlier messages summarized — Show\s*Undo/);
    assert.equal(await page.locator('#summary-body').isHidden(), true);
    await page.click('#summary-show');
    assert.equal(await text('#summary-body'), 'The user wants tabs.');
    assert.equal(await page.locator('#summary-body strong').innerText(), 'tabs');
    assert.equal(await page.locator('#summary-show').getAttribute('aria-expanded'), 'true');
    // The messages it covers stay, marked; the pinned one says so and offers Unpin.
    assert.deepEqual(await page.locator('.message .message-body').allInnerTexts(), ['RULE: tabs', 'one', 'second', 'two']);
    assert.equal(await page.locator('.message.summarized').count(), 2);
    assert.match(await page.locator('.message.user').first().locator('.message-role').innerText(), /pinned/);
    await page.locator('.message.user').first().locator('button[data-message-action="unpin"]').click();
    assert.deepEqual(await lastPosted(), { type: 'pin', messageId: 'q1', pinned: false });
    await page.locator('.message.user').nth(1).locator('button[data-message-action="pin"]').click();
    assert.deepEqual(await lastPosted(), { type: 'pin', messageId: 'q2', pinned: true });
    await page.click('#summary-undo');
    assert.deepEqual(await lastPosted(), { type: 'uncompact', summaryId: 's1' });
    await send({ type: 'session', sessionId: 'proj-1', title: 'Why is the build slow', entries, sessions: SESSIONS, stored: true, summary: null });
    assert.equal(await page.locator('#summary-banner').isHidden(), true);
    assert.equal(await page.locator('.message.summarized').count(), 0);
  });

  it("uses VS Code's theme colours", async () => {
    await page.evaluate(() => {
      document.documentElement.style.setProperty('--vscode-button-background', 'rgb(1, 2, 3)');
      document.documentElement.style.setProperty('--vscode-foreground', 'rgb(4, 5, 6)');
    });
    const colours = await page.evaluate(() => ({
      button: getComputedStyle(document.getElementById('send')!).backgroundColor,
      text: getComputedStyle(document.body).color,
    }));
    assert.deepEqual(colours, { button: 'rgb(1, 2, 3)', text: 'rgb(4, 5, 6)' });
  });
});
