// A real VS Code for the end-to-end test: code-server (installed by
// scripts/install-code-server.sh into a cache outside the repository) with its
// own user data, extensions and home directories under a temporary folder.

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { eventually } from './browser';

export function cacheRoot(): string {
  return process.env.DESKMATE_E2E_CACHE || join(homedir(), '.cache', 'deskmate-vscode-e2e');
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface CodeServerOptions {
  /** A folder for everything this instance writes. */
  root: string;
  settings: Record<string, unknown>;
  vsix: string;
  /** Extra environment for code-server and so for the extension host and the daemon. */
  env?: Record<string, string>;
  /**
   * Folders to put first on PATH in the login shell's profile. VS Code's server
   * takes the extension host's environment from a login shell, as a user's
   * machine would, so PATH must be set there rather than in our environment.
   */
  shellPath?: string[];
}

export class CodeServer {
  readonly port: Promise<number>;
  private process: ChildProcess | undefined;
  private output = '';
  private readonly binary: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly common: string[];

  constructor(private readonly options: CodeServerOptions) {
    const cache = cacheRoot();
    this.binary = join(cache, 'cs', 'node_modules', '.bin', 'code-server');
    if (!existsSync(this.binary)) {
      throw new Error(`code-server is not installed in ${cache}: run scripts/install-code-server.sh first.`);
    }
    const home = join(options.root, 'home');
    for (const dir of ['home', 'ud/User', 'ud/Machine', 'ext']) mkdirSync(join(options.root, dir), { recursive: true });
    // code-server is VS Code's remote setup: settings of machine scope are read
    // from the Machine settings, the others from the User settings.
    this.writeSettings(options.settings);
    writeFileSync(join(options.root, 'config.yaml'), 'auth: none\ncert: false\n');
    if (options.shellPath?.length) {
      const profile = `export PATH="${options.shellPath.join(':')}:$PATH"\n`;
      for (const name of ['.profile', '.bash_profile', '.zprofile']) writeFileSync(join(home, name), profile);
    }
    // code-server 4.139 needs Node 24, from the cache; it must come first on PATH.
    this.env = {
      ...process.env,
      ...options.env,
      PATH: `${join(cache, 'nodebin')}:${options.env?.PATH ?? process.env.PATH ?? ''}`,
      HOME: home,
      XDG_CONFIG_HOME: join(home, '.config'),
      XDG_DATA_HOME: join(home, '.local', 'share'),
      XDG_CACHE_HOME: join(home, '.cache'),
    };
    this.common = [
      '--config',
      join(options.root, 'config.yaml'),
      '--user-data-dir',
      join(options.root, 'ud'),
      '--extensions-dir',
      join(options.root, 'ext'),
    ];
    this.port = freePort();
  }

  /** Writes the settings; a running VS Code picks the change up by itself. */
  writeSettings(settings: Record<string, unknown>): void {
    for (const scope of ['User', 'Machine']) {
      writeFileSync(join(this.options.root, 'ud', scope, 'settings.json'), JSON.stringify(settings, null, 2));
    }
  }

  /**
   * Writes the Machine settings alone. A running code-server notices a change
   * there for settings of any scope, but not an edit of the User file made
   * behind its back (seen with 4.139: the old User value stays in force), so a
   * test that unsets a non-machine setting sets it here only.
   */
  writeMachineSettings(settings: Record<string, unknown>): void {
    writeFileSync(join(this.options.root, 'ud', 'Machine', 'settings.json'), JSON.stringify(settings, null, 2));
  }

  async installExtension(): Promise<string> {
    const { stdout } = await promisify(execFile)(
      this.binary,
      [...this.common, '--install-extension', this.options.vsix, '--force'],
      { env: this.env, timeout: 120_000 },
    );
    return stdout;
  }

  async start(): Promise<string> {
    const port = await this.port;
    this.process = spawn(
      this.binary,
      [
        ...this.common,
        '--auth',
        'none',
        '--bind-addr',
        `127.0.0.1:${port}`,
        '--disable-telemetry',
        '--disable-update-check',
        '--disable-workspace-trust',
        '--disable-getting-started-override',
      ],
      { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.process.stdout?.on('data', (chunk) => (this.output += chunk));
    this.process.stderr?.on('data', (chunk) => (this.output += chunk));
    const url = `http://127.0.0.1:${port}`;
    await eventually(
      async () => {
        if (this.process?.exitCode !== null) throw new Error(`code-server exited:\n${this.output}`);
        return (await fetch(`${url}/healthz`)).ok;
      },
      'code-server to answer /healthz',
      60_000,
    );
    return url;
  }

  async stop(): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  /** What the extension wrote to its "deskmate" log channel (its own lines and the daemon's). */
  extensionLog(): string {
    return findFiles(join(this.options.root, 'ud', 'logs'), (name) => name === 'deskmate.log')
      .map((file) => readFileSync(file, 'utf8'))
      .join('\n');
  }

  /** code-server's own output and the extension's log channel, for a failure report. */
  diagnostics(): string {
    const parts = [`--- code-server output ---\n${this.output.slice(-4000)}`];
    for (const file of findFiles(join(this.options.root, 'ud', 'logs'), (name) => /deskmate/i.test(name))) {
      parts.push(`--- ${file} ---\n${readFileSync(file, 'utf8').slice(-6000)}`);
    }
    for (const file of findFiles(join(this.options.root, 'ud', 'logs'), (name) => name === 'exthost.log')) {
      parts.push(`--- ${file} ---\n${readFileSync(file, 'utf8').slice(-3000)}`);
    }
    return parts.join('\n');
  }
}

function findFiles(dir: string, match: (name: string) => boolean): string[] {
  if (!existsSync(dir)) return [];
  const found: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...findFiles(path, match));
    else if (match(name)) found.push(path);
  }
  return found;
}
