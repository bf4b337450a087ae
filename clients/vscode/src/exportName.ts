/** A file name for an exported session: its title made safe for every file system. */
export function exportFileName(title: string, sessionId: string | null): string {
  const base = (title || sessionId || 'deskmate-session')
    .normalize('NFKC')
    .replace(/[\u0000-\u001f<>:"/\\|?*]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/[. ]+$/, '')
    .slice(0, 80)
    .trim();
  return `${base || 'deskmate-session'}.md`;
}
