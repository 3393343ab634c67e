// The OpenK share page (served by openk-server at /s/ID). It reads the key
// from the part of the address after '#', which browsers never send to a
// server, opens the link with one POST (that counts a view), decrypts the
// answer here with WebCrypto's AES-256-GCM and shows the fields. Nothing is
// loaded from anywhere else; nothing decrypted leaves this page.
//
// Envelope: version (1) || nonce (12) || ciphertext+tag (16), associated
// data "openk/v1/share-link" (src/crypto/share.rs writes the same).
'use strict';

(function () {
  const VERSION = 1;
  const AAD = new TextEncoder().encode('openk/v1/share-link');
  const main = document.querySelector('main');
  const status = document.getElementById('status');

  function say(text, state) {
    status.textContent = text;
    status.className = 'status ' + state;
    status.hidden = false;
    main.dataset.state = state;
  }

  function b64ToBytes(text) {
    const std = text.replace(/-/g, '+').replace(/_/g, '/');
    const padded = std + '='.repeat((4 - (std.length % 4)) % 4);
    const raw = atob(padded);
    const out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }

  async function copy(text, button) {
    try {
      await navigator.clipboard.writeText(text);
    } catch (_) {
      const area = document.createElement('textarea');
      area.value = text;
      document.body.appendChild(area);
      area.select();
      document.execCommand('copy');
      area.remove();
    }
    const was = button.textContent;
    button.textContent = 'Copied';
    setTimeout(function () { button.textContent = was; }, 1500);
  }

  function field(list, f) {
    const dt = document.createElement('dt');
    dt.textContent = String(f.label);
    const dd = document.createElement('dd');
    const value = document.createElement('div');
    value.className = 'value';
    value.dataset.label = String(f.label);
    value.textContent = String(f.value);
    dd.appendChild(value);
    if (f.concealed) {
      value.classList.add('masked');
      const dots = document.createElement('span');
      dots.className = 'dots';
      dots.textContent = '••••••••••';
      dd.insertBefore(dots, value);
      const reveal = document.createElement('button');
      reveal.type = 'button';
      reveal.textContent = 'Reveal';
      reveal.addEventListener('click', function () {
        const hidden = value.classList.toggle('masked');
        dots.hidden = !hidden;
        reveal.textContent = hidden ? 'Reveal' : 'Hide';
      });
      dd.appendChild(reveal);
    }
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'copy';
    button.textContent = 'Copy';
    button.addEventListener('click', function () { copy(String(f.value), button); });
    dd.appendChild(button);
    list.appendChild(dt);
    list.appendChild(dd);
  }

  function show(item) {
    document.getElementById('item-name').textContent = String(item.name);
    document.getElementById('item-kind').textContent = String(item.kind);
    const list = document.getElementById('fields');
    for (const f of item.fields || []) field(list, f);
    status.hidden = true;
    document.getElementById('item').hidden = false;
    main.dataset.state = 'shown';
  }

  async function open() {
    const path = location.pathname.match(/^\/s\/([A-Za-z0-9_-]+)\/?$/);
    const fragment = location.hash.replace(/^#/, '');
    let key = null;
    try {
      key = fragment ? b64ToBytes(fragment) : null;
    } catch (_) {
      key = null;
    }
    if (!path || !key || key.length !== 32) {
      say('This link is incomplete: the key after "#" is missing or cut off. Copy the whole link again from the message you received.', 'error');
      return;
    }
    if (!window.crypto || !crypto.subtle) {
      say('This browser cannot decrypt here: the page must be opened over https:// (or on this machine).', 'error');
      return;
    }
    let res;
    try {
      res = await fetch('/v1/shares/' + path[1] + '/open', {
        method: 'POST', cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer',
      });
    } catch (_) {
      say('Cannot reach the server. Check your connection and reload the page.', 'error');
      return;
    }
    if (res.status === 404) {
      say('This link has expired or was already used (or it was revoked). Ask the sender for a new one.', 'gone');
      return;
    }
    if (res.status === 429) {
      say('Too many attempts from this address. Wait a minute, then reload the page.', 'error');
      return;
    }
    if (!res.ok) {
      say('The server could not open this link (HTTP ' + res.status + '). Try again later.', 'error');
      return;
    }
    let plain;
    try {
      const blob = b64ToBytes((await res.json()).ciphertext);
      if (blob.length < 29 || blob[0] !== VERSION) throw new Error('unsupported envelope');
      const cryptoKey = await crypto.subtle.importKey('raw', key, { name: 'AES-GCM' }, false, ['decrypt']);
      plain = await crypto.subtle.decrypt(
        { name: 'AES-GCM', iv: blob.slice(1, 13), additionalData: AAD, tagLength: 128 },
        cryptoKey, blob.slice(13));
    } catch (_) {
      say('This link does not decrypt: the key in it is wrong, or the data was changed on the way. Ask the sender for a new link.', 'error');
      return;
    }
    // The key has done its work: keep it out of the address bar and history.
    history.replaceState(null, '', location.pathname);
    show(JSON.parse(new TextDecoder().decode(plain)));
  }

  open();
}());
