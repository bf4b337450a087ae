// The Sessions quick pick: every session of the workspace (pinned first, with tags and date)
// while the input is empty, and search-as-you-type across sessions once the user types; a
// chosen result opens its session scrolled to the message. Each row's buttons rename, tag,
// pin or delete that session.

import * as vscode from 'vscode';
import type { ChatController } from './chatController';
import { toDeskmateError } from './errors';
import type { SearchHit, SessionSummary } from './protocol';
import { madeElsewhere } from './sessionOrigin';

const SEARCH_DELAY_MS = 150;

const buttons = {
  rename: { iconPath: new vscode.ThemeIcon('edit'), tooltip: 'Rename' },
  tag: { iconPath: new vscode.ThemeIcon('tag'), tooltip: 'Tags' },
  pin: { iconPath: new vscode.ThemeIcon('pin'), tooltip: 'Pin to the top' },
  unpin: { iconPath: new vscode.ThemeIcon('pinned'), tooltip: 'Unpin' },
  delete: { iconPath: new vscode.ThemeIcon('trash'), tooltip: 'Delete' },
};

export interface SessionPickItem extends vscode.QuickPickItem {
  sessionId: string;
  messageId: string | null;
  title: string;
  pinned: boolean;
  tags: string[];
  messageCount?: number;
}

/** A snippet as plain text on one line: the `**` marks become the quick pick's own emphasis. */
export function plainSnippet(snippet: string): string {
  return snippet.replace(/\*\*/g, '').replace(/\s+/g, ' ').trim();
}

export function formatDate(iso: string | null | undefined): string {
  if (!iso) return '';
  const time = new Date(iso);
  return Number.isNaN(time.getTime()) ? iso : time.toLocaleString();
}

export function sessionItem(session: SessionSummary, folderUri?: string): SessionPickItem {
  const tags = session.tags ?? [];
  const pinned = session.pinned === true;
  return {
    label: `${pinned ? '$(pinned) ' : ''}${session.title || session.sessionId}`,
    description: [tags.map((t) => `#${t}`).join(' '), formatDate(session.updatedAt)].filter(Boolean).join(' · '),
    detail:
      `${session.messageCount} message${session.messageCount === 1 ? '' : 's'}${session.active ? ' · current' : ''}` +
      madeElsewhere(session, folderUri),
    sessionId: session.sessionId,
    messageId: null,
    title: session.title,
    pinned,
    tags,
    messageCount: session.messageCount,
    alwaysShow: true,
    buttons: [buttons.rename, buttons.tag, pinned ? buttons.unpin : buttons.pin, buttons.delete],
  };
}

export function hitItem(hit: SearchHit, known: Map<string, SessionSummary>): SessionPickItem {
  const session = known.get(hit.sessionId);
  const tags = session?.tags ?? [];
  const pinned = session?.pinned === true;
  const where = hit.role === 'user' ? 'question' : hit.role === 'assistant' ? 'answer' : 'title';
  return {
    label: `${pinned ? '$(pinned) ' : ''}${hit.title || hit.sessionId}`,
    description: [tags.map((t) => `#${t}`).join(' '), formatDate(hit.timestamp), where].filter(Boolean).join(' · '),
    detail: plainSnippet(hit.snippet),
    sessionId: hit.sessionId,
    messageId: hit.messageId,
    title: hit.title,
    pinned,
    tags,
    alwaysShow: true,
    buttons: [buttons.rename, buttons.tag, pinned ? buttons.unpin : buttons.pin, buttons.delete],
  };
}

/** Opens the Sessions quick pick; resolves when it is closed. `all`: every project's sessions. */
export async function showSessions(controller: ChatController, all = false): Promise<void> {
  const pick = vscode.window.createQuickPick<SessionPickItem>();
  pick.title = all ? 'deskmate: all sessions' : 'deskmate: sessions';
  pick.placeholder = 'Type to search every message and title ("exact phrase", words); Enter opens';
  pick.matchOnDescription = false;
  pick.matchOnDetail = false;
  let known = new Map<string, SessionSummary>();
  let generation = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const showError = (error: unknown) => {
    void vscode.window.showErrorMessage(toDeskmateError(error).message);
  };

  const load = async () => {
    const mine = ++generation;
    pick.busy = true;
    try {
      const sessions = await controller.listSessions();
      known = new Map(sessions.map((s) => [s.sessionId, s]));
      const query = pick.value.trim();
      if (mine !== generation) return;
      if (!query) {
        pick.items = sessions.map((session) => sessionItem(session, controller.workspaceUri()));
        pick.busy = false;
        return;
      }
      const found = await controller.searchSessions(query, all);
      if (mine !== generation) return;
      pick.items = found.results.map((hit) => hitItem(hit, known));
      pick.title = `deskmate: ${found.total} match${found.total === 1 ? '' : 'es'}`;
    } catch (error) {
      if (mine === generation) pick.items = [];
      // A query still being typed (nothing to search yet) is not worth a notification.
      const message = toDeskmateError(error).message;
      if (!/no words to search/.test(message)) showError(error);
    } finally {
      if (mine === generation) pick.busy = false;
    }
  };

  pick.onDidChangeValue(() => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => void load(), SEARCH_DELAY_MS);
  });

  pick.onDidAccept(async () => {
    const item = pick.selectedItems[0];
    if (!item) return;
    pick.hide();
    try {
      await controller.openAt(item.sessionId, item.messageId);
      await vscode.commands.executeCommand('deskmate.chatView.focus');
      if (item.messageId) await controller.openAt(item.sessionId, item.messageId);
    } catch (error) {
      showError(error);
    }
  });

  let open = true;
  pick.onDidTriggerItemButton(async ({ item, button }) => {
    try {
      await onButton(controller, item, button);
    } catch (error) {
      showError(error);
    }
    if (open) await load(); // rename and tags take the quick input for their box: the pick has closed
  });

  const closed = new Promise<void>((resolve) =>
    pick.onDidHide(() => {
      open = false;
      resolve();
    }),
  );
  pick.show();
  await load();
  await closed;
  if (timer) clearTimeout(timer);
  pick.dispose();
}

async function onButton(controller: ChatController, item: SessionPickItem, button: vscode.QuickInputButton) {
  if (button === buttons.rename) {
    const title = await vscode.window.showInputBox({
      title: 'Rename the deskmate session',
      value: item.title,
      prompt: 'At most 200 characters; automatic titles never replace yours.',
      ignoreFocusOut: true,
    });
    if (title?.trim()) await controller.renameSession(item.sessionId, title.trim());
  } else if (button === buttons.tag) {
    const value = await vscode.window.showInputBox({
      title: 'Tags of the deskmate session',
      value: item.tags.join(' '),
      prompt: 'Tags separated by spaces (no commas); remove a word to remove that tag.',
      ignoreFocusOut: true,
    });
    if (value === undefined) return;
    const wanted = value.split(/\s+/).filter(Boolean);
    const lower = new Set(wanted.map((t) => t.toLowerCase()));
    const remove = item.tags.filter((t) => !lower.has(t.toLowerCase()));
    await controller.tagSession(item.sessionId, wanted, remove);
  } else if (button === buttons.pin || button === buttons.unpin) {
    await controller.pinSession(item.sessionId, button === buttons.pin);
  } else if (button === buttons.delete) {
    const choice = await vscode.window.showWarningMessage(
      `Delete the session "${item.title || item.sessionId}"?`,
      { modal: true, detail: 'This cannot be undone.' },
      'Delete',
    );
    if (choice === 'Delete') await controller.deleteSession(item.sessionId);
  }
}
