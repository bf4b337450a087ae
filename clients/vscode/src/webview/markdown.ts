// Model output is untrusted: it is parsed as Markdown with raw HTML turned off,
// then sanitised, and only then reaches the DOM (as nodes, never as a string).

import DOMPurify, { type Config } from 'dompurify';
import MarkdownIt from 'markdown-it';

const markdown = new MarkdownIt({ html: false, linkify: true, breaks: false });

// Links may go to the web or to mail; anything else (javascript:, data:, file:,
// command: URIs of VS Code) loses its href. Images are dropped: remote ones would
// be blocked by the CSP anyway, and they can carry tracking.
const SANITIZE: Config & { RETURN_DOM_FRAGMENT: true } = {
  ALLOWED_URI_REGEXP: /^(?:https?:|mailto:|#)/i,
  FORBID_TAGS: ['style', 'img', 'svg', 'math', 'form', 'input', 'button', 'textarea', 'select', 'iframe', 'object', 'embed'],
  FORBID_ATTR: ['style', 'id', 'name'],
  RETURN_DOM_FRAGMENT: true,
};

/** Markdown to a sanitised fragment; code blocks get Copy and Insert buttons. */
export function renderMarkdown(text: string): DocumentFragment {
  const fragment = DOMPurify.sanitize(markdown.render(text), SANITIZE);
  for (const pre of Array.from(fragment.querySelectorAll('pre'))) {
    const block = codeBlock(pre);
    pre.replaceWith(block);
    block.append(pre);
  }
  for (const link of Array.from(fragment.querySelectorAll('a[href]'))) {
    link.setAttribute('rel', 'noreferrer noopener');
  }
  return fragment;
}

/** The frame of a code block: its language and buttons; the caller appends the <pre>. */
function codeBlock(pre: HTMLPreElement): HTMLElement {
  const block = document.createElement('div');
  block.className = 'code-block';
  const actions = document.createElement('div');
  actions.className = 'code-actions';
  const language = /language-([\w+#.-]+)/.exec(pre.querySelector('code')?.className ?? '')?.[1];
  if (language) {
    const label = document.createElement('span');
    label.className = 'code-language';
    label.textContent = language;
    actions.append(label);
  }
  actions.append(actionButton('copy', 'Copy', 'Copy the code'), actionButton('insert', 'Insert', 'Insert the code at the cursor'));
  block.append(actions);
  return block;
}

function actionButton(action: string, label: string, title: string): HTMLButtonElement {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'code-action secondary';
  button.dataset.action = action;
  button.textContent = label;
  button.title = title;
  return button;
}

/** The code of the block a Copy/Insert button belongs to. */
export function codeOf(button: Element): string | undefined {
  const code = button.closest('.code-block')?.querySelector('pre');
  const text = code?.textContent;
  return text === undefined || text === null ? undefined : text.replace(/\n$/, '');
}
