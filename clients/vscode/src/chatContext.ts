// What goes along with a question typed in the chat: the editor's file (its selection, or
// the part in view) unless the user removed that chip, and the files they added (@file,
// "+ add context"). Free of `vscode`: the extension says what the editor shows.

import type { ContextChip } from './messages';
import type { AskContext, Range, StoredContext } from './protocol';

/** The editor's code as the chat would send it, and how its chip names it. */
export interface EditorContext {
  context: AskContext;
  /** e.g. "calc.py:8-12 (selection)" or "calc.py:1-40". */
  label: string;
}

/** A workspace file the user can add, as the file picker and @ completion list it. */
export interface FileChoice {
  uri: string;
  /** Its path relative to the workspace folder. */
  label: string;
}

export const EDITOR_CHIP = 'editor';

export class ChatContext {
  private editor: EditorContext | undefined;
  /** The editor's file the user removed: it stays out until another file is in the editor. */
  private dismissedUri: string | undefined;
  private files: FileChoice[] = [];

  /** The editor changed (another file, selection or scroll); true when the chips changed. */
  setEditor(editor: EditorContext | undefined): boolean {
    const before = JSON.stringify(this.chips());
    if (editor?.context.uri !== this.editor?.context.uri) this.dismissedUri = undefined;
    this.editor = editor;
    return JSON.stringify(this.chips()) !== before;
  }

  add(file: FileChoice): void {
    if (!this.files.some((f) => f.uri === file.uri)) this.files.push(file);
  }

  remove(id: string): void {
    if (id === EDITOR_CHIP) this.dismissedUri = this.editor?.context.uri;
    else this.files = this.files.filter((f) => f.uri !== id);
  }

  /** The chips the prompt shows, the editor's first. */
  chips(): ContextChip[] {
    const chips: ContextChip[] = [];
    const editor = this.currentEditor();
    if (editor) chips.push({ id: EDITOR_CHIP, label: editor.label, kind: 'editor' });
    for (const file of this.files) chips.push({ id: file.uri, label: file.label, kind: 'file' });
    return chips;
  }

  /** What an ask sends now; the added files are used up by it (the editor's chip stays). */
  take(): { context?: AskContext; attachments?: AskContext[] } {
    const editor = this.currentEditor();
    const attachments = this.files.map((f) => ({ uri: f.uri }));
    this.files = [];
    return {
      ...(editor ? { context: editor.context } : {}),
      ...(attachments.length ? { attachments } : {}),
    };
  }

  private currentEditor(): EditorContext | undefined {
    return this.editor && this.editor.context.uri !== this.dismissedUri ? this.editor : undefined;
  }
}

/** "name:first-last" for a range (1-based lines), "name" for a whole file. */
export function contextLabel(uri: string, range?: Range, workspaceUri?: string): string {
  let name = uri;
  if (workspaceUri && uri.startsWith(`${workspaceUri.replace(/\/$/, '')}/`)) {
    name = uri.slice(workspaceUri.replace(/\/$/, '').length + 1);
  } else {
    name = uri.replace(/\/$/, '').split('/').pop() || uri;
  }
  try {
    name = decodeURIComponent(name);
  } catch {
    // a name that is not percent-encoded is shown as it is
  }
  if (!range) return name;
  const first = range.start.line + 1;
  // A range that ends at the start of a line does not include that line.
  const last = range.end.character === 0 && range.end.line > range.start.line ? range.end.line : range.end.line + 1;
  return first === last ? `${name}:${first}` : `${name}:${first}-${last}`;
}

/** The labels of what went along with a stored question: its context, then its attachments. */
export function storedContextLabels(context: StoredContext | undefined, workspaceUri?: string): string[] {
  if (!context) return [];
  const items = [context, ...(context.attachments ?? [])];
  return items.filter((item) => item.uri).map((item) => contextLabel(item.uri, item.range, workspaceUri));
}
