// The daemon's lifecycle: find it, start it with vscode-languageclient over
// stdio, keep its settings current, restart it, and report its state.

import * as vscode from 'vscode';
import {
  CloseAction,
  DidChangeConfigurationNotification,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  type LanguageClientOptions,
  RevealOutputChannelOn,
  type ServerOptions,
  State,
} from 'vscode-languageclient/node';
import type { DaemonPort } from './chatController';
import { DeskmateError, toDeskmateError } from './errors';
import type { DaemonState } from './messages';
import { ASK_DELTA_NOTIFICATION, type AskDelta, SESSION_CHANGED_NOTIFICATION, type SessionChanged } from './protocol';
import type { Resolution, ServerCommand } from './serverCommand';
import { type DaemonSettings, describeSettings, sameSettings, settingsChange } from './settings';

/**
 * vscode-languageclient pops up its own notifications when a start fails or the
 * connection drops, on top of ours. The Daemon reports each failure once, with
 * the fix, so the library's are kept to the log.
 */
class QuietLanguageClient extends LanguageClient {
  override error(message: string, data?: unknown, _showNotification?: boolean | 'force'): void {
    super.error(message, data, false);
  }
}

export interface DaemonDeps {
  output: vscode.LogOutputChannel;
  resolveCommand(): Promise<Resolution>;
  settings(): Promise<DaemonSettings>;
  /** Called once per failure, with a message that says what to do. */
  reportFailure(message: string): void;
}

// A daemon that crashes is restarted, but not more than this many times in this window.
const MAX_CRASHES = 3;
const CRASH_WINDOW_MS = 3 * 60_000;
const STOP_TIMEOUT_MS = 3000;

export class Daemon implements DaemonPort, vscode.Disposable {
  private client: QuietLanguageClient | undefined;
  private current: DaemonState = 'stopped';
  private failure: string | undefined;
  private sent: DaemonSettings = {};
  private crashes: number[] = [];
  private stopping = false;
  /** Start, stop and restart run one after another, never interleaved. */
  private queue: Promise<void> = Promise.resolve();
  private readonly stateEmitter = new vscode.EventEmitter<{ state: DaemonState; message?: string }>();
  private readonly deltaEmitter = new vscode.EventEmitter<AskDelta>();
  private readonly changeEmitter = new vscode.EventEmitter<SessionChanged>();

  readonly onDidChangeState = this.stateEmitter.event;
  readonly onAskDelta = this.deltaEmitter.event;
  /** Another process changed a session this window opened (deskmate/sessionChanged). */
  readonly onSessionChanged = this.changeEmitter.event;

  constructor(private readonly deps: DaemonDeps) {}

  get state(): DaemonState {
    return this.current;
  }

  start(): Promise<void> {
    return this.enqueue(() => this.doStart());
  }

  restart(): Promise<void> {
    return this.enqueue(async () => {
      await this.doStop();
      await this.doStart();
    });
  }

  stop(): Promise<void> {
    return this.enqueue(() => this.doStop());
  }

  async dispose(): Promise<void> {
    await this.stop();
    this.stateEmitter.dispose();
    this.deltaEmitter.dispose();
    this.changeEmitter.dispose();
  }

  async execute<T>(command: string, args: object = {}): Promise<T> {
    // A request made while the daemon starts waits for it.
    if (this.current === 'starting') await this.queue;
    const client = this.client;
    if (this.current !== 'running' || !client) {
      throw new DeskmateError(this.failure ?? 'deskmate is not running. Run "deskmate: Restart Daemon".');
    }
    try {
      return (await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: [args] })) as T;
    } catch (error) {
      throw toDeskmateError(error);
    }
  }

  /**
   * Passes changed settings on with a `didChangeConfiguration`, the API key
   * included; a removed setting goes as `null`, which the daemon takes as
   * "back to your default". Never restarts: that would throw away unsaved
   * sessions and running answers. (Only `deskmate.serverCommand` restarts,
   * from the extension's configuration listener.)
   */
  async updateSettings(): Promise<void> {
    // A daemon being started gets the change once it runs, not the start's copy.
    if (this.current === 'starting') await this.queue;
    const next = await this.deps.settings();
    if (sameSettings(this.sent, next)) return;
    const change = settingsChange(this.sent, next);
    // Whatever starts next (a retry, a restart after a crash) sends `next` as its initializationOptions.
    this.sent = next;
    if (this.client && this.current === 'running') {
      await this.client.sendNotification(DidChangeConfigurationNotification.type, { settings: { deskmate: change } });
      this.deps.output.info(`Settings sent: ${describeSettings(change)}`);
    } else if (this.current === 'failed') {
      // Nothing runs, so nothing is lost: the new settings may be the fix.
      await this.start();
    }
  }

  // ---- lifecycle ------------------------------------------------------------------------

  private enqueue(step: () => Promise<void>): Promise<void> {
    const run = this.queue.then(step, step);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private setState(state: DaemonState, message?: string): void {
    if (this.current === state && message === undefined) return;
    this.current = state;
    this.stateEmitter.fire({ state, message });
  }

  private fail(message: string): void {
    this.failure = message;
    this.deps.output.error(message);
    this.setState('failed', message);
    this.deps.reportFailure(message);
  }

  private async doStart(): Promise<void> {
    if (this.client) return;
    this.failure = undefined;
    this.crashes = [];
    this.setState('starting');
    const resolution = await this.deps.resolveCommand();
    if (!resolution.ok) {
      this.fail(resolution.message);
      return;
    }
    const server = resolution.server;
    this.sent = await this.deps.settings();
    this.deps.output.info(
      `Starting ${[server.command, ...server.args].join(' ')} (from ${sourceLabel(server.source)}); settings: ${describeSettings(this.sent)}`,
    );
    const serverOptions: ServerOptions = {
      command: server.command,
      // No `transport`: with one, vscode-languageclient appends `--stdio`; without, it talks stdio anyway.
      args: server.args,
      options: { env: { ...process.env, PYTHONUNBUFFERED: '1' } },
    };
    const client = new QuietLanguageClient('deskmate', 'deskmate', serverOptions, this.clientOptions());
    client.onNotification(ASK_DELTA_NOTIFICATION, (delta: AskDelta) => this.deltaEmitter.fire(delta));
    client.onNotification(SESSION_CHANGED_NOTIFICATION, (change: SessionChanged) => this.changeEmitter.fire(change));
    client.onDidChangeState((event) => {
      if (this.client !== client) return;
      if (event.newState === State.Running) this.setState('running');
      else if (event.newState === State.Starting) this.setState('starting');
    });
    this.client = client;
    this.stopping = false;
    try {
      await client.start();
      this.setState('running');
    } catch (error) {
      this.client = undefined;
      await client.dispose(STOP_TIMEOUT_MS).catch(() => undefined);
      const reason = error instanceof Error ? error.message : String(error);
      this.fail(
        `deskmate could not start: "${[server.command, ...server.args].join(' ')}" (from ${sourceLabel(server.source)}) failed: ${reason}. ` +
          'See "deskmate: Show Log" for what it printed. Fix: install deskmate where that command runs, or set "deskmate.serverCommand".',
      );
    }
  }

  private async doStop(): Promise<void> {
    const client = this.client;
    if (!client) {
      if (this.current !== 'failed') this.setState('stopped');
      return;
    }
    this.stopping = true;
    this.client = undefined;
    try {
      await client.stop(STOP_TIMEOUT_MS);
    } catch (error) {
      this.deps.output.warn(`Stopping the daemon: ${String(error)}`);
    } finally {
      await client.dispose(STOP_TIMEOUT_MS).catch(() => undefined);
      this.stopping = false;
    }
    this.setState('stopped');
  }

  private clientOptions(): LanguageClientOptions {
    return {
      // The chat sends the selected text itself, so no document is synchronised.
      documentSelector: [],
      outputChannel: this.deps.output,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      // A function, so an automatic restart after a crash sends the settings in force.
      initializationOptions: () => this.sent,
      middleware: {
        workspace: {
          // The daemon may pull its section: answer with what we would push.
          configuration: async (params, token, next) => {
            const others = await next(params, token);
            return params.items.map((item, index) =>
              item.section === 'deskmate' ? this.sent : Array.isArray(others) ? others[index] : null,
            );
          },
        },
      },
      errorHandler: {
        error: (_error, _message, count) => ({
          action: (count ?? 0) <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown,
          handled: true,
        }),
        closed: () => this.onClosed(),
      },
      initializationFailedHandler: () => false,
    };
  }

  private onClosed(): { action: CloseAction; handled: boolean } {
    if (this.stopping || this.current !== 'running') return { action: CloseAction.DoNotRestart, handled: true };
    const now = Date.now();
    this.crashes = [...this.crashes.filter((at) => now - at < CRASH_WINDOW_MS), now];
    if (this.crashes.length <= MAX_CRASHES) {
      this.deps.output.warn('The daemon stopped unexpectedly; restarting it.');
      this.setState('starting');
      return { action: CloseAction.Restart, handled: true };
    }
    const client = this.client;
    this.client = undefined;
    void client?.dispose(STOP_TIMEOUT_MS).catch(() => undefined);
    this.fail(
      `deskmate stopped unexpectedly ${this.crashes.length} times in 3 minutes and was not restarted. ` +
        'See "deskmate: Show Log" for why, then run "deskmate: Restart Daemon".',
    );
    return { action: CloseAction.DoNotRestart, handled: true };
  }
}

function sourceLabel(source: ServerCommand['source']): string {
  return source === 'setting' ? 'deskmate.serverCommand' : source === 'python' ? 'the selected Python interpreter' : 'PATH';
}
