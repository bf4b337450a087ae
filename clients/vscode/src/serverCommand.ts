// Finding the command that starts the daemon. Kept free of `vscode` so the
// order of the fallbacks is unit-tested.

import * as fs from 'node:fs';
import * as path from 'node:path';

export interface ServerCommand {
  command: string;
  args: string[];
  /** Where the command came from, for the log and the error message. */
  source: 'setting' | 'python' | 'path';
}

export type Resolution = { ok: true; server: ServerCommand } | { ok: false; message: string };

export interface ResolveInputs {
  /** `deskmate.serverCommand`: the full command line as a list, or just an executable. */
  configured: unknown;
  /** The interpreter chosen in the Python extension, if it is installed and has one. */
  pythonInterpreter(): Promise<string | undefined>;
  /**
   * False in Restricted Mode: the Python extension may have picked an
   * interpreter inside the workspace (its `.venv`), which is the repository's
   * code, so it is not run. Default true.
   */
  trusted?: boolean;
  /** Whether `python -c "import deskmate"` succeeds with that interpreter. */
  hasDeskmateModule(python: string): Promise<boolean>;
  /** Absolute path of an executable found on PATH, or undefined. */
  findOnPath(name: string): string | undefined;
  /** Whether an absolute path exists. */
  exists(file: string): boolean;
}

const SETTINGS_FIX = 'set "deskmate.serverCommand" to the full command, e.g. ["/path/to/venv/bin/deskmate", "lsp"]';

/**
 * The command to start the daemon: the `deskmate.serverCommand` setting, else
 * `python -m deskmate lsp` with the Python extension's interpreter (when
 * deskmate is installed there, and the workspace is trusted), else
 * `deskmate lsp` from PATH. When none
 * works the message says what was tried and how to fix it.
 */
export async function resolveServerCommand(inputs: ResolveInputs): Promise<Resolution> {
  const configured = parseConfigured(inputs.configured);
  if (configured === 'invalid') {
    return {
      ok: false,
      message: `The setting "deskmate.serverCommand" must be a list of strings, e.g. ["/path/to/venv/bin/deskmate", "lsp"].`,
    };
  }
  if (configured) {
    const [executable, ...rest] = configured;
    const found = path.isAbsolute(executable)
      ? inputs.exists(executable)
        ? executable
        : undefined
      : inputs.findOnPath(executable);
    if (!found) {
      return {
        ok: false,
        message: `The command in "deskmate.serverCommand" (${executable}) was not found. Fix the setting, or clear it to use deskmate from the Python environment or PATH.`,
      };
    }
    // A bare `deskmate` executable still needs its `lsp` subcommand.
    const args = rest.length === 0 && /^deskmate(\.exe|\.cmd)?$/i.test(path.basename(executable)) ? ['lsp'] : rest;
    return { ok: true, server: { command: found, args, source: 'setting' } };
  }

  const python = inputs.trusted === false ? undefined : await inputs.pythonInterpreter();
  if (python && (await inputs.hasDeskmateModule(python))) {
    return { ok: true, server: { command: python, args: ['-m', 'deskmate', 'lsp'], source: 'python' } };
  }

  const onPath = inputs.findOnPath('deskmate');
  if (onPath) {
    return { ok: true, server: { command: onPath, args: ['lsp'], source: 'path' } };
  }

  const tried = python
    ? `The Python interpreter selected in VS Code (${python}) does not have the deskmate package, and there is no "deskmate" command on PATH.`
    : inputs.trusted === false
      ? 'There is no "deskmate" command on PATH, and in Restricted Mode the Python interpreter selected for this workspace is not used.'
      : 'There is no "deskmate" command on PATH and no Python interpreter is selected in VS Code.';
  const install = python
    ? `install deskmate into that interpreter ("${python}" -m pip install /path/to/deskmate)`
    : 'install deskmate (pip install /path/to/deskmate) so that "deskmate" is on PATH';
  return { ok: false, message: `deskmate could not start: ${tried} Fix: ${install}, or ${SETTINGS_FIX}.` };
}

function parseConfigured(value: unknown): string[] | undefined | 'invalid' {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'string') return value.trim() ? [value.trim()] : undefined;
  if (Array.isArray(value)) {
    if (value.length === 0) return undefined;
    if (!value.every((part) => typeof part === 'string') || !value[0].trim()) return 'invalid';
    return value as string[];
  }
  return 'invalid';
}

/** Looks `name` up on PATH the way a shell would (with PATHEXT on Windows). */
export function findOnPath(
  name: string,
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): string | undefined {
  const dirs = (env.PATH ?? env.Path ?? '').split(path.delimiter).filter(Boolean);
  const exts = platform === 'win32' ? (env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';').filter(Boolean) : [''];
  for (const dir of dirs) {
    for (const ext of exts) {
      const candidate = path.join(dir, name + ext);
      try {
        const stat = fs.statSync(candidate);
        if (stat.isFile() && (platform === 'win32' || (stat.mode & 0o111) !== 0)) return candidate;
      } catch {
        // not here; try the next directory
      }
    }
  }
  return undefined;
}
