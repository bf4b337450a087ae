// A project's sessions are listed in every folder of it (a clone, a worktree, the folder after
// a move): a session made in another folder says where.

import type { SessionSummary } from './protocol';

/** ` · made in <path>` for a session made in a folder other than `folderUri`, else ''. */
export function madeElsewhere(session: Pick<SessionSummary, 'workspaceUri'>, folderUri: string | undefined): string {
  if (!session.workspaceUri || !folderUri) return '';
  const trim = (uri: string) => uri.replace(/\/+$/, '');
  if (trim(session.workspaceUri) === trim(folderUri)) return '';
  let shown = session.workspaceUri;
  try {
    const url = new URL(session.workspaceUri);
    if (url.protocol === 'file:') shown = decodeURIComponent(url.pathname);
  } catch {
    // not a URL: shown as it is
  }
  return ` · made in ${shown}`;
}
