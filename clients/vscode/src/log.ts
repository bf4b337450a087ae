// The extension's log channel with secrets masked in every line. Everything
// goes through it: our own lines, vscode-languageclient's (its errors and, at
// log level Trace, every message with the settings in full) and the daemon's
// stderr, which the library forwards line by line.

import type * as vscode from 'vscode';

/** `channel` with `mask` applied to each line before it is written. */
export function maskedLog(channel: vscode.LogOutputChannel, mask: (text: string) => string): vscode.LogOutputChannel {
  const line = (message: string | Error, args: unknown[]) => mask([message, ...args].map(format).join(' '));
  return {
    get name() {
      return channel.name;
    },
    get logLevel() {
      return channel.logLevel;
    },
    onDidChangeLogLevel: channel.onDidChangeLogLevel,
    trace: (message, ...args) => channel.trace(line(message, args)),
    debug: (message, ...args) => channel.debug(line(message, args)),
    info: (message, ...args) => channel.info(line(message, args)),
    warn: (message, ...args) => channel.warn(line(message, args)),
    error: (error, ...args) => channel.error(line(error, args)),
    append: (value) => channel.append(mask(value)),
    appendLine: (value) => channel.appendLine(mask(value)),
    replace: (value) => channel.replace(mask(value)),
    clear: () => channel.clear(),
    show: (columnOrPreserveFocus?: vscode.ViewColumn | boolean, preserveFocus?: boolean) =>
      typeof columnOrPreserveFocus === 'boolean' || columnOrPreserveFocus === undefined
        ? channel.show(columnOrPreserveFocus)
        : channel.show(columnOrPreserveFocus, preserveFocus),
    hide: () => channel.hide(),
    dispose: () => channel.dispose(),
  };
}

function format(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Error) return value.stack ?? value.message;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
