import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { type AskOrigin, ChatController, type ChatHost, type DaemonPort } from '../../src/chatController';
import { DeskmateError } from '../../src/errors';
import type { DaemonState, ToWebview } from '../../src/messages';
import type { SessionSummary, StoredMessage, Summary } from '../../src/protocol';

const FOLDER = 'file:///work/project';

/** A daemon that answers commands from a script and records them. */
class FakeDaemon implements DaemonPort {
  state: DaemonState = 'running';
  calls: { command: string; args: Record<string, unknown> }[] = [];
  messages: StoredMessage[] = [];
  sessions: SessionSummary[] = [];
  sessionId: string | null = 'project-1234abcd';
  forkedFrom: { sessionId: string; messageId: string } | null = null;
  forks: { sessionId: string; messageId: string; title: string }[] = [];
  summaries: Summary[] = [];
  nextAskTokens: number | null = null;
  /** Set by a test to control deskmate.ask. */
  onAsk: (args: Record<string, unknown>) => Promise<unknown> = async (args) => ({
    sessionId: this.sessionId,
    askId: args.askId,
    answer: 'the answer',
    interrupted: false,
  });
  failures: Record<string, Error> = {};

  async execute<T>(command: string, args: object = {}): Promise<T> {
    const record = args as Record<string, unknown>;
    this.calls.push({ command, args: record });
    const failure = this.failures[command];
    if (failure) throw failure;
    switch (command) {
      case 'deskmate.ask':
        return (await this.onAsk(record)) as T;
      case 'deskmate.getSession': {
        const since = record.sinceMessageId as string | undefined;
        const at = since === undefined ? -1 : this.messages.findIndex((m) => m.id === since);
        return {
          sessionId: this.sessionId,
          title: 'Project',
          messages: since === undefined || at < 0 ? [...this.messages] : this.messages.slice(at + 1),
          messageCount: this.messages.length,
          ...(since === undefined ? {} : { sinceMessageId: since, reset: at < 0 }),
          forkedFrom: this.forkedFrom,
          forks: this.forks,
          summaries: this.summaries,
          nextAskTokens: this.nextAskTokens,
        } as T;
      }
      case 'deskmate.pinMessage':
        return { sessionId: record.sessionId, messageId: record.messageId, pinned: record.pinned } as T;
      case 'deskmate.compactSession':
        return { sessionId: this.sessionId, ...this.summaries[0] } as T;
      case 'deskmate.forkSession':
        return {
          sessionId: 'fork-1',
          title: 'Project (fork)',
          messageCount: 2,
          forkedFrom: { sessionId: this.sessionId, messageId: record.messageId },
        } as T;
      case 'deskmate.listSessions':
        return { sessions: this.sessions } as T;
      case 'deskmate.cancel':
        return { cancelled: true } as T;
      case 'deskmate.newSession':
        return { sessionId: 'new-1', title: '' } as T;
      case 'deskmate.deleteSession':
        return (record.permanent
          ? { deleted: true, trashed: false }
          : { deleted: true, trashed: true, purgeAfter: '2027-01-05T00:00:00.000Z' }) as T;
      case 'deskmate.listModels':
        return { models: [{ id: 'test-model' }, { id: 'qwen' }], current: 'test-model', default: 'test-model' } as T;
      case 'deskmate.setModel':
        return { model: record.model, workspaceUri: record.workspaceUri } as T;
      case 'deskmate.restoreSession':
        return { sessionId: record.sessionId, title: 'Restored', messageCount: 4 } as T;
      default:
        return {} as T;
    }
  }

  commands(): string[] {
    return this.calls.map((call) => call.command);
  }
}

class FakeHost implements ChatHost {
  posted: ToWebview[] = [];
  errors: string[] = [];
  progressOrigins: AskOrigin[] = [];
  cancelProgress: (() => void) | undefined;
  folder: string | undefined = FOLDER;
  copied: string[] = [];
  inserted: string[] = [];
  restarts = 0;
  /** Offers of Undo, and what the user answers to the next ones (false: the notification closes). */
  undoOffers: string[] = [];
  undoAnswer: Promise<boolean> = Promise.resolve(false);
  /** Workspace files, as findFiles and pickFiles offer them. */
  files = [
    { uri: `${FOLDER}/src/calc.py`, label: 'src/calc.py' },
    { uri: `${FOLDER}/util.py`, label: 'util.py' },
  ];
  picked: { uri: string; label: string }[] = [];

  post(message: ToWebview): void {
    this.posted.push(message);
  }
  workspaceUri(): string | undefined {
    return this.folder;
  }
  async progress<T>(origin: AskOrigin, _title: string, task: () => Promise<T>, cancel: () => void): Promise<T> {
    this.progressOrigins.push(origin);
    this.cancelProgress = cancel;
    return task();
  }
  showError(message: string): void {
    this.errors.push(message);
  }
  copy(text: string): void {
    this.copied.push(text);
  }
  insert(text: string): void {
    this.inserted.push(text);
  }
  restartDaemon(): void {
    this.restarts++;
  }
  offerUndo(message: string): Promise<boolean> {
    this.undoOffers.push(message);
    return this.undoAnswer;
  }
  async findFiles(query: string) {
    return this.files.filter((file) => file.label.includes(query));
  }
  async pickFiles() {
    return this.picked;
  }
  /** The model the user picks next, and what pickModel was offered. */
  modelChoice: string | undefined;
  modelOffers: { models: string[]; current: string }[] = [];
  async pickModel(models: string[], current: string) {
    this.modelOffers.push({ models, current });
    return this.modelChoice;
  }
  types(): string[] {
    return this.posted.map((message) => message.type);
  }
  last<K extends ToWebview['type']>(type: K): Extract<ToWebview, { type: K }> | undefined {
    return this.posted.filter((m) => m.type === type).pop() as Extract<ToWebview, { type: K }> | undefined;
  }
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('ChatController', () => {
  let daemon: FakeDaemon;
  let host: FakeHost;
  let controller: ChatController;
  let ids: number;

  beforeEach(() => {
    daemon = new FakeDaemon();
    host = new FakeHost();
    ids = 0;
    controller = new ChatController(daemon, host, () => `ask-${++ids}`);
  });

  it('passes coalesced deltas (several lines each) to the view as they are; the text is their concatenation', async () => {
    const answer = deferred<unknown>();
    daemon.onAsk = () => answer.promise;
    const asking = controller.ask('Many lines?');
    await tick();
    const full = Array.from({ length: 30 }, (_, i) => `line ${i + 1}: \`code\``).join('\n');
    const deltas = [full.slice(0, 5), full.slice(5, 200), full.slice(200)];
    deltas.forEach((delta, index) => controller.onAskDelta({ askId: 'ask-1', sessionId: 's', delta, index }));
    assert.deepEqual(
      host.posted.filter((m) => m.type === 'askDelta').map((m) => (m as { delta: string }).delta),
      deltas,
    );
    answer.resolve({ sessionId: 's', askId: 'ask-1', answer: full, interrupted: false });
    assert.equal((await asking)?.answer, full);
  });

  it('streams an answer into the view in order, then shows the stored history', async () => {
    const answer = deferred<unknown>();
    daemon.onAsk = () => answer.promise;
    const asking = controller.ask('  What is this?  ');
    await tick();
    assert.deepEqual(host.posted[0], { type: 'askStarted', askId: 'ask-1', question: 'What is this?' });
    assert.deepEqual(daemon.calls[0], {
      command: 'deskmate.ask',
      args: { question: 'What is this?', askId: 'ask-1', workspaceUri: FOLDER },
    });
    controller.onAskDelta({ askId: 'ask-1', sessionId: 's', delta: 'Hel', index: 0 });
    controller.onAskDelta({ askId: 'other', sessionId: 's', delta: 'NOPE', index: 0 });
    controller.onAskDelta({ askId: 'ask-1', sessionId: 's', delta: 'lo', index: 1 });
    daemon.messages = [
      { id: '1', role: 'user', content: 'What is this?', timestamp: 't' },
      { id: '2', role: 'assistant', content: 'Hello', timestamp: 't' },
    ];
    answer.resolve({ sessionId: 's', askId: 'ask-1', answer: 'Hello', interrupted: false });
    const result = await asking;
    assert.equal(result?.answer, 'Hello');
    assert.deepEqual(host.types(), ['askStarted', 'askDelta', 'askDelta', 'askFinished', 'session']);
    assert.deepEqual(
      host.posted.filter((m) => m.type === 'askDelta').map((m) => (m as { delta: string }).delta),
      ['Hel', 'lo'],
    );
    assert.deepEqual(host.last('askFinished'), { type: 'askFinished', askId: 'ask-1', answer: 'Hello', interrupted: false });
    assert.equal(host.last('session')?.entries.length, 2);
    assert.deepEqual(host.progressOrigins, ['view']);
    assert.equal(controller.busy, false);
  });

  it('sends the editor context with a palette ask', async () => {
    const context = { uri: 'file:///work/project/a.py', text: 'x = 1', languageId: 'python' };
    await controller.ask('Explain', context, 'palette');
    assert.deepEqual(daemon.calls[0].args.context, context);
    assert.deepEqual(host.progressOrigins, ['palette']);
    // The question shows its chip, as Ask About Selection's does: the file, relative to the folder.
    assert.deepEqual(host.last('askStarted')?.context, ['a.py']);
  });

  it('a selection ask shows the lines it sent as the question\'s chip', async () => {
    const range = { start: { line: 7, character: 0 }, end: { line: 12, character: 0 } };
    const context = { uri: `${FOLDER}/src/calc.py`, range, text: 'def add(a, b):', languageId: 'python' };
    await controller.ask('Explain', context, 'palette');
    assert.deepEqual(daemon.calls[0].args.context, context);
    assert.deepEqual(host.last('askStarted')?.context, ['src/calc.py:8-12']);
  });

  it('leaves workspaceUri out when no folder is open', async () => {
    host.folder = undefined;
    await controller.ask('Hi');
    assert.equal('workspaceUri' in daemon.calls[0].args, false);
  });

  it('Stop cancels the running ask by its askId and shows the partial answer', async () => {
    const answer = deferred<unknown>();
    daemon.onAsk = () => answer.promise;
    const asking = controller.ask('Long one');
    await tick();
    controller.onAskDelta({ askId: 'ask-1', sessionId: 's', delta: 'partial', index: 0 });
    await controller.handle({ type: 'stop' });
    assert.deepEqual(daemon.calls.at(-1), { command: 'deskmate.cancel', args: { askId: 'ask-1' } });
    answer.resolve({ sessionId: 's', askId: 'ask-1', answer: 'partial', interrupted: true });
    await asking;
    assert.deepEqual(host.last('askFinished'), { type: 'askFinished', askId: 'ask-1', answer: 'partial', interrupted: true });
  });

  it('cancelling the progress notification cancels the ask', async () => {
    const answer = deferred<unknown>();
    daemon.onAsk = () => answer.promise;
    const asking = controller.ask('Q', undefined, 'palette');
    await tick();
    host.cancelProgress?.();
    await tick();
    assert.ok(daemon.commands().includes('deskmate.cancel'));
    answer.resolve({ sessionId: 's', askId: 'ask-1', answer: '', interrupted: true });
    await asking;
  });

  it('Stop with nothing running does nothing', async () => {
    await controller.stop();
    assert.deepEqual(daemon.calls, []);
  });

  it('refuses a second ask while one is answering', async () => {
    const answer = deferred<unknown>();
    daemon.onAsk = () => answer.promise;
    const first = controller.ask('one');
    await tick();
    assert.equal(await controller.ask('two', undefined, 'palette'), undefined);
    assert.equal(daemon.commands().filter((c) => c === 'deskmate.ask').length, 1);
    assert.match(host.last('error')?.message ?? '', /still answering/);
    assert.equal(host.errors.length, 1);
    answer.resolve({ sessionId: 's', askId: 'ask-1', answer: 'a', interrupted: false });
    await first;
  });

  it("shows the daemon's failure inline, and as a notification for palette asks", async () => {
    daemon.onAsk = async () => {
      throw new DeskmateError('The model server failed (HTTP 500).', -32803);
    };
    assert.equal(await controller.ask('q'), undefined);
    assert.deepEqual(host.last('askFailed'), { type: 'askFailed', askId: 'ask-1', message: 'The model server failed (HTTP 500).' });
    // The stored history (with the partial answer) comes first, so the error is not wiped by it.
    assert.deepEqual(host.types(), ['askStarted', 'session', 'askFailed']);
    assert.deepEqual(host.errors, []);
    await controller.ask('q', undefined, 'palette');
    assert.deepEqual(host.errors, ['The model server failed (HTTP 500).']);
    assert.equal(controller.busy, false);
  });

  it('ignores empty questions', async () => {
    assert.equal(await controller.ask('   '), undefined);
    assert.deepEqual(daemon.calls, []);
  });

  it('gives a view that opens mid-answer the history and the answer so far, without the question twice', async () => {
    const answer = deferred<unknown>();
    daemon.onAsk = () => answer.promise;
    daemon.messages = [
      { id: '1', role: 'user', content: 'earlier', timestamp: 't' },
      { id: '2', role: 'assistant', content: 'reply', timestamp: 't' },
      { id: '3', role: 'user', content: 'now?', timestamp: 't' },
    ];
    const asking = controller.ask('now?');
    await tick();
    controller.onAskDelta({ askId: 'ask-1', sessionId: 's', delta: 'so ', index: 0 });
    controller.onAskDelta({ askId: 'ask-1', sessionId: 's', delta: 'far', index: 1 });
    host.posted = [];
    await controller.handle({ type: 'ready' });
    assert.deepEqual(host.types(), ['status', 'session', 'contextChips', 'askStarted', 'askDelta']);
    assert.deepEqual(
      host.last('session')?.entries.map((e) => e.content),
      ['earlier', 'reply'],
    );
    assert.deepEqual(host.last('askDelta'), { type: 'askDelta', askId: 'ask-1', delta: 'so far' });
    answer.resolve({ sessionId: 's', askId: 'ask-1', answer: 'so far', interrupted: false });
    await asking;
  });

  it('shows the stored history with roles and interrupted answers, skipping other roles', async () => {
    daemon.messages = [
      { id: '0', role: 'system', content: 'sys', timestamp: 't' },
      { id: '1', role: 'user', content: 'q', timestamp: 't' },
      { id: '2', role: 'assistant', content: 'half', timestamp: 't', status: 'interrupted' },
    ];
    daemon.sessions = [
      { sessionId: 'project-1234abcd', title: 'Project', workspaceUri: FOLDER, createdAt: 'c', updatedAt: 'u', messageCount: 2, active: true },
    ];
    await controller.refresh();
    assert.deepEqual(host.last('session'), {
      type: 'session',
      sessionId: 'project-1234abcd',
      title: 'Project',
      entries: [
        { id: '1', role: 'user', content: 'q' },
        { id: '2', role: 'assistant', content: 'half', status: 'interrupted' },
      ],
      sessions: [{ sessionId: 'project-1234abcd', title: 'Project', messageCount: 2, active: true }],
      stored: true,
      forkedFrom: null,
      forkCount: 0,
      summary: null,
      nextAskTokens: null,
    });
    assert.deepEqual(daemon.calls.map((c) => c.args), [{ workspaceUri: FOLDER }, { workspaceUri: FOLDER }]);
  });

  it('marks a session without a folder as not stored', async () => {
    daemon.sessionId = null;
    await controller.refresh();
    assert.equal(host.last('session')?.stored, false);
  });

  it('switches, creates and deletes sessions from the view, then refreshes', async () => {
    await controller.handle({ type: 'switchSession', sessionId: 'other' });
    await controller.handle({ type: 'newSession' });
    await controller.handle({ type: 'deleteSession', sessionId: 'old' });
    const actions = daemon.calls.filter((c) => !['deskmate.getSession', 'deskmate.listSessions'].includes(c.command));
    assert.deepEqual(actions, [
      { command: 'deskmate.switchSession', args: { sessionId: 'other', workspaceUri: FOLDER } },
      { command: 'deskmate.newSession', args: { workspaceUri: FOLDER } },
      { command: 'deskmate.deleteSession', args: { sessionId: 'old' } },
    ]);
    assert.equal(host.posted.filter((m) => m.type === 'session').length, 3);
  });

  it('deleting asks nothing, offers Undo, and Undo restores the session and shows it again', async () => {
    daemon.sessions = [
      { sessionId: 'project-1234abcd', title: 'Parser bug', workspaceUri: FOLDER, createdAt: '', updatedAt: '', messageCount: 4, active: true },
    ];
    await controller.refresh();
    const undo = deferred<boolean>();
    host.undoAnswer = undo.promise;
    const result = await controller.deleteSession('project-1234abcd');
    assert.deepEqual(result, { deleted: true, trashed: true, purgeAfter: '2027-01-05T00:00:00.000Z' });
    assert.deepEqual(host.undoOffers, ['deskmate: moved "Parser bug" to the trash.']);
    const before = daemon.calls.length;
    undo.resolve(true); // the user presses Undo
    await tick();
    await tick();
    const actions = daemon.calls.slice(before).filter((c) => !['deskmate.getSession', 'deskmate.listSessions'].includes(c.command));
    assert.deepEqual(actions, [
      { command: 'deskmate.restoreSession', args: { sessionId: 'project-1234abcd' } },
      { command: 'deskmate.switchSession', args: { sessionId: 'project-1234abcd', workspaceUri: FOLDER } },
    ]);
    assert.ok(daemon.calls.slice(before).some((c) => c.command === 'deskmate.getSession'), 'the view is refreshed');
  });

  it('a dismissed Undo leaves the session in the trash; a permanent delete offers none', async () => {
    await controller.deleteSession('other');
    await tick();
    assert.equal(host.undoOffers.length, 1);
    assert.equal(daemon.commands().includes('deskmate.restoreSession'), false);
    assert.deepEqual(await controller.deleteSession('other', true), { deleted: true, trashed: false });
    assert.deepEqual(daemon.calls.filter((c) => c.command === 'deskmate.deleteSession').pop()?.args, {
      sessionId: 'other',
      permanent: true,
    });
    assert.equal(host.undoOffers.length, 1, 'nothing to undo');
  });

  it('lists the trash and restores from it without switching', async () => {
    await controller.listTrash();
    assert.deepEqual(daemon.calls.pop(), { command: 'deskmate.listSessions', args: { workspaceUri: FOLDER, trash: true } });
    const restored = await controller.restoreSession('binned');
    assert.deepEqual(restored, { sessionId: 'binned', title: 'Restored', messageCount: 4 });
    assert.equal(daemon.commands().includes('deskmate.switchSession'), false);
  });

  it('shows a failed session action inline', async () => {
    daemon.failures['deskmate.switchSession'] = new DeskmateError('Session "gone" does not exist', -32803);
    await controller.handle({ type: 'switchSession', sessionId: 'gone' });
    assert.deepEqual(host.last('error'), { type: 'error', message: 'Session "gone" does not exist' });
  });

  it('does not change sessions while an answer streams', async () => {
    const answer = deferred<unknown>();
    daemon.onAsk = () => answer.promise;
    const asking = controller.ask('q');
    await tick();
    await controller.handle({ type: 'newSession' });
    assert.equal(daemon.commands().includes('deskmate.newSession'), false);
    assert.match(host.last('error')?.message ?? '', /still answering/);
    answer.resolve({ sessionId: 's', askId: 'ask-1', answer: 'a', interrupted: false });
    await asking;
  });

  it('hands copy, insert and restart to the host', async () => {
    await controller.handle({ type: 'copy', text: 'a' });
    await controller.handle({ type: 'insert', text: 'b' });
    await controller.handle({ type: 'restart' });
    assert.deepEqual([host.copied, host.inserted, host.restarts], [['a'], ['b'], 1]);
  });

  it('passes daemon states on and loads the session once it runs', async () => {
    controller.onDaemonState('failed', 'deskmate could not start: fix it');
    assert.deepEqual(host.posted, [{ type: 'status', state: 'failed', message: 'deskmate could not start: fix it' }]);
    controller.onDaemonState('running');
    await tick();
    assert.ok(daemon.commands().includes('deskmate.getSession'));
    assert.equal(host.last('session')?.sessionId, 'project-1234abcd');
  });

  it('does not report refresh failures while the daemon is down (the status says why)', async () => {
    daemon.state = 'failed';
    daemon.failures['deskmate.getSession'] = new DeskmateError('not running');
    await controller.refresh();
    assert.equal(host.last('error'), undefined);
  });
  describe('forks', () => {
    const history = [
      { id: 'q1', role: 'user', content: 'first', timestamp: 't' },
      { id: 'a1', role: 'assistant', content: 'one', timestamp: 't' },
      { id: 'q2', role: 'user', content: 'second', timestamp: 't' },
      { id: 'a2', role: 'assistant', content: 'two', timestamp: 't' },
    ];

    beforeEach(async () => {
      daemon.messages = history;
      await controller.refresh();
      daemon.calls = [];
      host.posted = [];
    });

    it('Fork from here forks the shown session at that message and shows the fork with its source', async () => {
      daemon.sessions = [
        { sessionId: 'project-1234abcd', title: 'Project', workspaceUri: FOLDER, createdAt: 'c', updatedAt: 'u', messageCount: 4, active: false },
      ];
      await controller.handle({ type: 'fork', messageId: 'a1' });
      assert.deepEqual(daemon.calls[0], {
        command: 'deskmate.forkSession',
        args: { workspaceUri: FOLDER, sessionId: 'project-1234abcd', messageId: 'a1' },
      });
      daemon.forkedFrom = { sessionId: 'project-1234abcd', messageId: 'a1' };
      await controller.refresh();
      assert.deepEqual(host.last('session')?.forkedFrom, { sessionId: 'project-1234abcd', messageId: 'a1', title: 'Project' });
    });

    it('Edit resends the new text with editMessageId; the view replaces the question and what followed', async () => {
      await controller.handle({ type: 'edit', messageId: 'q2', question: 'second, better' });
      assert.deepEqual(host.posted[0], { type: 'askStarted', askId: 'ask-1', question: 'second, better', replaceFrom: 'q2' });
      assert.deepEqual(daemon.calls[0].args, {
        question: 'second, better',
        askId: 'ask-1',
        workspaceUri: FOLDER,
        sessionId: 'project-1234abcd',
        editMessageId: 'q2',
      });
    });

    it('Retry on an answer asks its question again with regenerate, without a question', async () => {
      await controller.handle({ type: 'retry', messageId: 'a2' });
      assert.deepEqual(host.posted[0], { type: 'askStarted', askId: 'ask-1', question: 'second', replaceFrom: 'q2' });
      assert.deepEqual(daemon.calls[0].args, {
        askId: 'ask-1',
        workspaceUri: FOLDER,
        sessionId: 'project-1234abcd',
        editMessageId: 'q2',
        regenerate: true,
      });
    });

    it('the source shows how many forks were made from it', async () => {
      daemon.forks = [{ sessionId: 'fork-1', messageId: 'a1', title: 'Project (fork)' }];
      await controller.refresh();
      assert.equal(host.last('session')?.forkCount, 1);
      assert.equal(host.last('session')?.forkedFrom, null);
    });
  });

  describe('live sessions', () => {
    const message = (id: string, role: 'user' | 'assistant', content: string): StoredMessage => ({
      id,
      role,
      content,
      timestamp: '2026-12-06T10:00:00Z',
    });

    beforeEach(async () => {
      daemon.messages = [message('q1', 'user', 'first'), message('a1', 'assistant', 'one')];
      await controller.refresh();
      host.posted = [];
      daemon.calls = [];
    });

    it('adds the turn another window stored below the shown ones, reading only what is new', async () => {
      daemon.messages.push(message('q2', 'user', 'from the terminal'), message('a2', 'assistant', 'two'));
      await controller.onSessionChanged({ sessionId: 'project-1234abcd', change: 'appended', messageCount: 4 });
      assert.deepEqual(daemon.calls[0], {
        command: 'deskmate.getSession',
        args: { workspaceUri: FOLDER, sessionId: 'project-1234abcd', sinceMessageId: 'a1' },
      });
      assert.deepEqual(host.posted, [
        {
          type: 'appendEntries',
          sessionId: 'project-1234abcd',
          entries: [
            { id: 'q2', role: 'user', content: 'from the terminal' },
            { id: 'a2', role: 'assistant', content: 'two' },
          ],
        },
      ]);
      // The next change reads after the last message added.
      daemon.messages.push(message('q3', 'user', 'again'));
      await controller.onSessionChanged({ sessionId: 'project-1234abcd', change: 'appended', messageCount: 5 });
      assert.equal(daemon.calls[1].args.sinceMessageId, 'a2');
      assert.deepEqual(host.last('appendEntries')?.entries, [{ id: 'q3', role: 'user', content: 'again' }]);
    });

    it('two changes in a row add each message once', async () => {
      daemon.messages.push(message('q2', 'user', 'question'));
      const first = controller.onSessionChanged({ sessionId: 'project-1234abcd', change: 'appended', messageCount: 3 });
      daemon.messages.push(message('a2', 'assistant', 'answer'));
      const second = controller.onSessionChanged({ sessionId: 'project-1234abcd', change: 'appended', messageCount: 4 });
      await Promise.all([first, second]);
      const added = host.posted.flatMap((m) => (m.type === 'appendEntries' ? m.entries.map((e) => e.id) : []));
      assert.deepEqual(added, ['q2', 'a2']);
    });

    it('a session rewritten elsewhere, or renamed, is drawn again keeping the reader\'s place', async () => {
      daemon.messages = [message('x1', 'user', 'rewritten')];
      await controller.onSessionChanged({ sessionId: 'project-1234abcd', change: 'appended', messageCount: 1 });
      assert.equal(host.last('session')?.keepScroll, true);
      assert.deepEqual(host.last('session')?.entries.map((e) => e.id), ['x1']);
      host.posted = [];
      await controller.onSessionChanged({ sessionId: 'project-1234abcd', change: 'updated', messageCount: 1 });
      assert.equal(host.last('session')?.keepScroll, true);
    });

    it('changes of other sessions, and while this window answers, are left alone', async () => {
      await controller.onSessionChanged({ sessionId: 'another', change: 'appended', messageCount: 9 });
      const answer = deferred<unknown>();
      daemon.onAsk = () => answer.promise;
      const asking = controller.ask('mine');
      await tick();
      await controller.onSessionChanged({ sessionId: 'project-1234abcd', change: 'appended', messageCount: 3 });
      assert.deepEqual(daemon.commands(), ['deskmate.ask']);
      answer.resolve({ sessionId: 'project-1234abcd', askId: 'ask-1', answer: 'ok', interrupted: false });
      await asking;
    });

    it('a session deleted in another window is said so', async () => {
      await controller.onSessionChanged({ sessionId: 'project-1234abcd', change: 'deleted', messageCount: 0 });
      assert.deepEqual(host.posted, [{ type: 'error', message: 'This session was deleted in another window.' }]);
    });
  });

  describe('context that goes along with a question typed in the chat', () => {
    const editor = {
      context: {
        uri: `${FOLDER}/src/calc.py`,
        languageId: 'python',
        range: { start: { line: 7, character: 0 }, end: { line: 11, character: 4 } },
        text: 'def add(a, b):',
      },
      label: 'src/calc.py:8-12 (selection)',
    };

    it('the editor code goes along by default, shown as a chip and under the question', async () => {
      controller.onEditorChanged(editor);
      assert.deepEqual(host.last('contextChips')?.chips, [{ id: 'editor', label: 'src/calc.py:8-12 (selection)', kind: 'editor' }]);
      await controller.handle({ type: 'ask', question: 'What does this do?' });
      assert.deepEqual(daemon.calls[0].args.context, editor.context);
      assert.equal(daemon.calls[0].args.attachments, undefined);
      assert.deepEqual(host.last('askStarted')?.context, ['src/calc.py:8-12']);
      // The editor's chip stays for the next question.
      assert.equal(host.last('contextChips')?.chips.length, 1);
    });

    it('a removed editor chip is not sent, until another file is in the editor', async () => {
      controller.onEditorChanged(editor);
      await controller.handle({ type: 'removeContext', id: 'editor' });
      assert.deepEqual(host.last('contextChips')?.chips, []);
      controller.onEditorChanged({ ...editor, label: 'src/calc.py:1-40' }); // scrolled: still removed
      await controller.handle({ type: 'ask', question: 'Plain question' });
      assert.equal(daemon.calls[0].args.context, undefined);
      controller.onEditorChanged({ context: { uri: `${FOLDER}/util.py` }, label: 'util.py:1-3' });
      assert.deepEqual(host.last('contextChips')?.chips.map((c) => c.label), ['util.py:1-3']);
    });

    it('@ completion suggests workspace files; a picked or added file goes along once, whole', async () => {
      await controller.handle({ type: 'suggestFiles', query: 'calc' });
      assert.deepEqual(host.last('fileSuggestions'), {
        type: 'fileSuggestions',
        query: 'calc',
        files: [{ uri: `${FOLDER}/src/calc.py`, label: 'src/calc.py' }],
      });
      await controller.handle({ type: 'attachFile', uri: `${FOLDER}/src/calc.py`, label: 'src/calc.py' });
      host.picked = [{ uri: `${FOLDER}/util.py`, label: 'util.py' }];
      await controller.handle({ type: 'addContext' });
      assert.deepEqual(host.last('contextChips')?.chips.map((c) => [c.id, c.kind]), [
        [`${FOLDER}/src/calc.py`, 'file'],
        [`${FOLDER}/util.py`, 'file'],
      ]);
      await controller.handle({ type: 'ask', question: '@src/calc.py and util: how do they fit?' });
      assert.deepEqual(daemon.calls[0].args.attachments, [{ uri: `${FOLDER}/src/calc.py` }, { uri: `${FOLDER}/util.py` }]);
      assert.deepEqual(host.last('askStarted')?.context, ['src/calc.py', 'util.py']);
      assert.deepEqual(host.last('contextChips')?.chips, [], 'added files are used up by the question');
    });

    it('an @path typed in full goes along too; an @word that names no file does not', async () => {
      await controller.handle({ type: 'ask', question: 'compare @util.py with @nothing, please' });
      assert.deepEqual(daemon.calls[0].args.attachments, [{ uri: `${FOLDER}/util.py` }]);
    });

    it('the history shows what went along with each stored question', async () => {
      daemon.messages = [
        {
          id: 'q1',
          role: 'user',
          content: 'how?',
          timestamp: 't',
          context: {
            uri: `${FOLDER}/src/calc.py`,
            range: { start: { line: 7, character: 0 }, end: { line: 12, character: 0 } },
            text: 'x',
            attachments: [{ uri: `${FOLDER}/util.py`, text: 'y' }],
          },
        },
        { id: 'a1', role: 'assistant', content: 'so', timestamp: 't' },
      ];
      await controller.refresh();
      assert.deepEqual(host.last('session')?.entries.map((e) => e.context), [['src/calc.py:8-12', 'util.py'], undefined]);
    });
  });

  it('deleting the shown session goes on in the most recent one left', async () => {
    const summary = (sessionId: string, updatedAt: string, active = false) => ({
      sessionId, title: sessionId, workspaceUri: FOLDER, createdAt: '', updatedAt, messageCount: 2, active,
    });
    daemon.sessions = [summary('project-1234abcd', '2026-12-03T00:00:00Z', true), summary('old', '2026-12-01T00:00:00Z'), summary('recent', '2026-12-02T00:00:00Z')];
    await controller.refresh();
    await controller.deleteSession('project-1234abcd');
    const switched = daemon.calls.filter((c) => c.command === 'deskmate.switchSession');
    assert.deepEqual(switched.map((c) => c.args.sessionId), ['recent']);
  });

  it('the model button lists the server models and sets the one picked for this workspace', async () => {
    host.modelChoice = 'qwen';
    await controller.handle({ type: 'pickModel' });
    assert.deepEqual(host.modelOffers, [{ models: ['test-model', 'qwen'], current: 'test-model' }]);
    assert.deepEqual(daemon.calls.find((c) => c.command === 'deskmate.setModel')?.args, { workspaceUri: FOLDER, model: 'qwen' });
    host.modelChoice = undefined; // cancelled: nothing is set
    const before = daemon.calls.length;
    await controller.pickModel();
    assert.equal(daemon.calls.slice(before).some((c) => c.command === 'deskmate.setModel'), false);
  });

  describe('summaries and pins', () => {
    const summary: Summary = {
      summaryId: 's1',
      covers: { fromMessageId: 'q1', toMessageId: 'a1' },
      summary: 'The user wants tabs.',
      messageCount: 2,
      createdAt: 't',
      model: 'm',
      instructions: null,
      active: true,
    };

    beforeEach(() => {
      daemon.messages = [
        { id: 'q1', role: 'user', content: 'first', timestamp: 't', pinned: true },
        { id: 'a1', role: 'assistant', content: 'one', timestamp: 't' },
        { id: 'q2', role: 'user', content: 'second', timestamp: 't' },
        { id: 'a2', role: 'assistant', content: 'two', timestamp: 't' },
      ];
    });

    it('the view gets the summary in use for its banner, pinned messages marked, and the next ask\'s tokens', async () => {
      daemon.summaries = [{ ...summary, summaryId: 's0', active: false }, summary];
      daemon.nextAskTokens = 321;
      await controller.refresh();
      const shown = host.last('session');
      assert.deepEqual(shown?.summary, { summaryId: 's1', messageCount: 2, text: 'The user wants tabs.', toMessageId: 'a1' });
      assert.equal(shown?.nextAskTokens, 321);
      assert.deepEqual(shown?.entries[0], { id: 'q1', role: 'user', content: 'first', pinned: true });
    });

    it('Undo in the banner drops the summary of the shown session, Pin pins a message; both refresh', async () => {
      await controller.refresh();
      daemon.calls = [];
      await controller.handle({ type: 'uncompact', summaryId: 's1' });
      await controller.handle({ type: 'pin', messageId: 'q2', pinned: true });
      const actions = daemon.calls.filter((c) => !['deskmate.getSession', 'deskmate.listSessions'].includes(c.command));
      assert.deepEqual(actions, [
        { command: 'deskmate.uncompactSession', args: { sessionId: 'project-1234abcd', summaryId: 's1' } },
        { command: 'deskmate.pinMessage', args: { sessionId: 'project-1234abcd', messageId: 'q2', pinned: true } },
      ]);
      assert.equal(daemon.commands().filter((c) => c === 'deskmate.getSession').length, 2);
    });

    it('compacting sends the instructions for the shown session and refreshes', async () => {
      daemon.summaries = [summary];
      await controller.refresh();
      const done = await controller.compactSession('keep the rules');
      assert.equal(done.messageCount, 2);
      const call = daemon.calls.find((c) => c.command === 'deskmate.compactSession');
      assert.deepEqual(call?.args, { workspaceUri: FOLDER, sessionId: 'project-1234abcd', instructions: 'keep the rules' });
      assert.equal(daemon.commands().at(-1), 'deskmate.listSessions');
    });
  });
});
