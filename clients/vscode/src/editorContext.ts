// The editor's side of the chat's context: the code in view (or selected) in the editor
// last used, and workspace files for @ completion and "+ add context".

import * as vscode from 'vscode';
import { contextLabel, type EditorContext, type FileChoice } from './chatContext';

// Over this, the text is left to the daemon, which reads the document and cuts it with a note.
const MAX_SENT_TEXT = 1_000_000;
const MAX_SUGGESTIONS = 30;
const EXCLUDED = '**/{node_modules,.git,.venv,__pycache__,dist,out,build}/**';
// Not code: VS Code's own views of output, settings and the like.
const SKIPPED_SCHEMES = new Set(['output', 'vscode-settings', 'vscode-userdata', 'git', 'debug']);

/** The selection of `editor`, or (nothing selected) the lines in view, as the chat sends them. */
export function editorContext(editor: vscode.TextEditor | undefined): EditorContext | undefined {
  if (!editor || SKIPPED_SCHEMES.has(editor.document.uri.scheme)) return undefined;
  const document = editor.document;
  const selected = !editor.selection.isEmpty;
  let range: vscode.Range;
  if (selected) {
    range = new vscode.Range(editor.selection.start, editor.selection.end);
  } else {
    const visible = editor.visibleRanges;
    const first = visible[0]?.start.line ?? 0;
    const last = visible[visible.length - 1]?.end.line ?? Math.min(document.lineCount - 1, 50);
    range = new vscode.Range(first, 0, last, document.lineAt(Math.min(last, document.lineCount - 1)).text.length);
  }
  range = document.validateRange(range);
  const text = document.getText(range);
  const wire = {
    start: { line: range.start.line, character: range.start.character },
    end: { line: range.end.line, character: range.end.character },
  };
  const folder = vscode.workspace.getWorkspaceFolder(document.uri)?.uri.toString();
  const uri = document.uri.toString();
  return {
    context: {
      uri,
      languageId: document.languageId,
      range: wire,
      ...(text.length <= MAX_SENT_TEXT ? { text } : {}),
    },
    label: `${contextLabel(uri, wire, folder)}${selected ? ' (selection)' : ''}`,
  };
}

function choice(uri: vscode.Uri): FileChoice {
  return { uri: uri.toString(), label: vscode.workspace.asRelativePath(uri, false) };
}

/** Workspace files whose path contains `query` (case-insensitive), shortest paths first. */
export async function findFiles(query: string): Promise<FileChoice[]> {
  const needle = query.toLowerCase();
  const glob = needle ? `**/*${needle.replace(/[[\]{}*?!]/g, '')}*` : '**/*';
  let found = await vscode.workspace.findFiles(glob, EXCLUDED, 200);
  if (found.length < MAX_SUGGESTIONS && needle.includes('/')) {
    // "src/ca" matches a path, not a name: look at every file.
    found = (await vscode.workspace.findFiles('**/*', EXCLUDED, 2000)).filter((uri) =>
      vscode.workspace.asRelativePath(uri, false).toLowerCase().includes(needle),
    );
  }
  return found
    .map(choice)
    .filter((file) => file.label.toLowerCase().includes(needle))
    .sort((a, b) => a.label.length - b.label.length || a.label.localeCompare(b.label))
    .slice(0, MAX_SUGGESTIONS);
}

/** "+ add context": a quick pick of workspace files (several may be picked). */
export async function pickFiles(): Promise<FileChoice[]> {
  const files = (await vscode.workspace.findFiles('**/*', EXCLUDED, 5000)).map(choice);
  files.sort((a, b) => a.label.localeCompare(b.label));
  const picked = await vscode.window.showQuickPick(
    files.map((file) => ({ label: file.label, file })),
    { title: 'deskmate: Add Context', placeHolder: 'Files to send along with the next question', canPickMany: true, matchOnDescription: true },
  );
  return (picked ?? []).map((item) => item.file);
}

/**
 * Calls `changed` with the context of the editor last used whenever its file, selection or
 * scroll changes (scrolling settles first). Focusing the chat keeps the editor's context.
 */
export function watchEditorContext(changed: (editor: EditorContext | undefined) => void): vscode.Disposable {
  let last = vscode.window.activeTextEditor;
  let timer: NodeJS.Timeout | undefined;
  const update = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      const live = last && vscode.window.visibleTextEditors.includes(last) ? last : undefined;
      changed(editorContext(vscode.window.activeTextEditor ?? live));
    }, 150);
  };
  const disposables = [
    vscode.window.onDidChangeActiveTextEditor((editor) => {
      if (editor && !SKIPPED_SCHEMES.has(editor.document.uri.scheme)) last = editor;
      update();
    }),
    vscode.window.onDidChangeTextEditorSelection(update),
    vscode.window.onDidChangeTextEditorVisibleRanges(update),
    vscode.window.onDidChangeVisibleTextEditors(update),
  ];
  update();
  return {
    dispose: () => {
      if (timer) clearTimeout(timer);
      for (const disposable of disposables) disposable.dispose();
    },
  };
}
