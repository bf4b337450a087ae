import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { type ResolveInputs, findOnPath, resolveServerCommand } from '../../src/serverCommand';

function inputs(overrides: Partial<ResolveInputs>): ResolveInputs {
  return {
    configured: undefined,
    pythonInterpreter: async () => undefined,
    hasDeskmateModule: async () => false,
    findOnPath: () => undefined,
    exists: () => false,
    ...overrides,
  };
}

describe('resolveServerCommand', () => {
  it('uses deskmate.serverCommand first, as given', async () => {
    const result = await resolveServerCommand(
      inputs({
        configured: ['/opt/venv/bin/python', '-m', 'deskmate', 'lsp'],
        exists: (file) => file === '/opt/venv/bin/python',
        pythonInterpreter: async () => '/usr/bin/python3',
        hasDeskmateModule: async () => true,
        findOnPath: () => '/usr/local/bin/deskmate',
      }),
    );
    assert.deepEqual(result, {
      ok: true,
      server: { command: '/opt/venv/bin/python', args: ['-m', 'deskmate', 'lsp'], source: 'setting' },
    });
  });

  it("does not run the workspace's Python interpreter in Restricted Mode", async () => {
    let asked = false;
    const untrusted = inputs({
      trusted: false,
      pythonInterpreter: async () => {
        asked = true;
        return '/work/cloned-repo/.venv/bin/python';
      },
      hasDeskmateModule: async () => true,
    });
    assert.deepEqual(await resolveServerCommand({ ...untrusted, findOnPath: () => '/usr/local/bin/deskmate' }), {
      ok: true,
      server: { command: '/usr/local/bin/deskmate', args: ['lsp'], source: 'path' },
    });
    const none = await resolveServerCommand(untrusted);
    assert.equal(asked, false);
    assert.ok(!none.ok && /Restricted Mode/.test(none.message));
  });

  it('adds the lsp subcommand to a bare deskmate executable', async () => {
    const result = await resolveServerCommand(
      inputs({ configured: ['/home/me/.venv/bin/deskmate'], exists: () => true }),
    );
    assert.ok(result.ok);
    assert.deepEqual(result.server.args, ['lsp']);
  });

  it('accepts a single string and looks a bare name up on PATH', async () => {
    const result = await resolveServerCommand(
      inputs({ configured: 'deskmate', findOnPath: (name) => (name === 'deskmate' ? '/x/bin/deskmate' : undefined) }),
    );
    assert.deepEqual(result, { ok: true, server: { command: '/x/bin/deskmate', args: ['lsp'], source: 'setting' } });
  });

  it('reports a configured command that does not exist, naming the setting', async () => {
    const result = await resolveServerCommand(inputs({ configured: ['/nope/deskmate', 'lsp'] }));
    assert.equal(result.ok, false);
    assert.match(!result.ok ? result.message : '', /deskmate\.serverCommand.*\/nope\/deskmate.*was not found/);
  });

  it('rejects a setting that is not a list of strings', async () => {
    const result = await resolveServerCommand(inputs({ configured: [1, 2] }));
    assert.equal(result.ok, false);
    assert.match(!result.ok ? result.message : '', /must be a list of strings/);
  });

  it('treats an empty setting as unset', async () => {
    const result = await resolveServerCommand(inputs({ configured: [], findOnPath: () => '/bin/deskmate' }));
    assert.ok(result.ok);
    assert.equal(result.server.source, 'path');
  });

  it('uses the Python extension interpreter when deskmate is installed there', async () => {
    const result = await resolveServerCommand(
      inputs({
        pythonInterpreter: async () => '/proj/.venv/bin/python',
        hasDeskmateModule: async (python) => python === '/proj/.venv/bin/python',
        findOnPath: () => '/usr/local/bin/deskmate',
      }),
    );
    assert.deepEqual(result, {
      ok: true,
      server: { command: '/proj/.venv/bin/python', args: ['-m', 'deskmate', 'lsp'], source: 'python' },
    });
  });

  it('falls back to PATH when the interpreter lacks deskmate', async () => {
    const result = await resolveServerCommand(
      inputs({ pythonInterpreter: async () => '/usr/bin/python3', findOnPath: () => '/usr/local/bin/deskmate' }),
    );
    assert.deepEqual(result, { ok: true, server: { command: '/usr/local/bin/deskmate', args: ['lsp'], source: 'path' } });
  });

  it('says what was tried and how to fix it when nothing works', async () => {
    const withPython = await resolveServerCommand(inputs({ pythonInterpreter: async () => '/usr/bin/python3' }));
    assert.equal(withPython.ok, false);
    const message = !withPython.ok ? withPython.message : '';
    assert.match(message, /\/usr\/bin\/python3/);
    assert.match(message, /no "deskmate" command on PATH/);
    assert.match(message, /pip install/);
    assert.match(message, /deskmate\.serverCommand/);

    const bare = await resolveServerCommand(inputs({}));
    assert.match(!bare.ok ? bare.message : '', /no Python interpreter is selected/);
  });
});

describe('findOnPath', () => {
  it('finds executables only, in PATH order', () => {
    const dir1 = fs.mkdtempSync(path.join(os.tmpdir(), 'deskmate-path-'));
    const dir2 = fs.mkdtempSync(path.join(os.tmpdir(), 'deskmate-path-'));
    try {
      fs.writeFileSync(path.join(dir1, 'deskmate'), '#!/bin/sh\n', { mode: 0o644 });
      fs.writeFileSync(path.join(dir2, 'deskmate'), '#!/bin/sh\n', { mode: 0o755 });
      const env = { PATH: [dir1, dir2].join(path.delimiter) };
      assert.equal(findOnPath('deskmate', env, 'linux'), path.join(dir2, 'deskmate'));
      assert.equal(findOnPath('absent', env, 'linux'), undefined);
    } finally {
      fs.rmSync(dir1, { recursive: true });
      fs.rmSync(dir2, { recursive: true });
    }
  });

  it('tries PATHEXT on Windows', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deskmate-path-'));
    try {
      fs.writeFileSync(path.join(dir, 'deskmate.EXE'), '');
      assert.equal(findOnPath('deskmate', { PATH: dir, PATHEXT: '.COM;.EXE' }, 'win32'), path.join(dir, 'deskmate.EXE'));
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });
});
