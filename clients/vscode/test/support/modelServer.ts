// The repository's fake OpenAI-compatible model server (tests/model_server.py),
// run as a child process.

import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface ModelServer {
  baseUrl: string;
  stop(): Promise<void>;
}

export function startModelServer(repoRoot: string): Promise<ModelServer> {
  const python = process.env.DESKMATE_PYTHON || 'python';
  const child: ChildProcess = spawn(python, [
      join(repoRoot, 'tests', 'model_server.py'),
      ...['--port', '0', '--models', 'test-model,qwen2.5-coder-7b'],
      // Realistic answers to the questions of the README's pictures.
      ...['--canned', join(repoRoot, 'clients', 'vscode', 'test', 'support', 'readme-conversation.json')],
    ], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error('the model server did not print READY in 30 s')), 30_000);
    const fail = (error: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${error.message}\n${stderr}`));
    };
    child.once('error', fail);
    child.once('exit', (code) => fail(new Error(`the model server exited with ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = /^READY (\S+)/.exec(line);
      if (!match) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolve({
        baseUrl: match[1],
        stop: () =>
          new Promise<void>((done) => {
            if (child.exitCode !== null) return done();
            child.once('exit', () => done());
            child.kill('SIGTERM');
          }),
      });
    });
  });
}
