import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chatPageHtml, contentSecurityPolicy, makeNonce } from '../../src/webviewHtml';

const resources = {
  cspSource: 'https://file+.vscode-resource.vscode-cdn.net',
  scriptUri: 'https://file+.vscode-resource.vscode-cdn.net/ext/dist/webview.js',
  styleUri: 'https://file+.vscode-resource.vscode-cdn.net/ext/media/chat.css',
};

describe('chat page', () => {
  it('allows only our nonce-tagged script and our own stylesheet', () => {
    const csp = contentSecurityPolicy(resources.cspSource, 'abc123');
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'nonce-abc123'(;|$)/);
    assert.match(csp, new RegExp(`style-src ${resources.cspSource.replace(/[.+]/g, '\\$&')}(;|$)`));
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*|https?:\/\/(?!file\+)/);
  });

  it('tags its one script with the nonce of its policy', () => {
    const html = chatPageHtml({ ...resources, nonce: 'n0nce+/=' });
    const scripts = [...html.matchAll(/<script\b[^>]*>/g)].map((m) => m[0]);
    assert.equal(scripts.length, 1);
    assert.match(scripts[0], /nonce="n0nce\+\/="/);
    assert.match(html, /script-src 'nonce-n0nce\+\/='/);
    assert.doesNotMatch(html, /\son\w+=/i, 'no inline event handlers');
    assert.doesNotMatch(html, /<style/i, 'no inline styles');
  });

  it('uses a new unguessable nonce for every page', () => {
    const nonces = new Set(Array.from({ length: 50 }, makeNonce));
    assert.equal(nonces.size, 50);
    for (const nonce of nonces) assert.ok(Buffer.from(nonce, 'base64').length >= 16);
    const a = chatPageHtml(resources).match(/nonce-([^']+)'/)?.[1];
    const b = chatPageHtml(resources).match(/nonce-([^']+)'/)?.[1];
    assert.ok(a && b && a !== b);
  });

  it('escapes resource URIs into attributes', () => {
    const html = chatPageHtml({ ...resources, scriptUri: 'https://x/"><script>alert(1)</script>' });
    assert.doesNotMatch(html, /<script>alert/);
  });

  it('has labelled, keyboard-reachable controls', () => {
    const html = chatPageHtml(resources);
    for (const id of ['session-select', 'prompt']) assert.match(html, new RegExp(`<label[^>]*for="${id}"`));
    for (const id of ['new-session', 'delete-session', 'send', 'stop']) assert.match(html, new RegExp(`<button id="${id}"`));
    assert.match(html, /role="log"/);
  });
});
