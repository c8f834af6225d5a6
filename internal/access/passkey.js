// Passkeys for noops sign-in pages: WebAuthn ceremonies against /.noops/passkey/*.
"use strict";
(function () {
  const b64u = {
    enc(buf) {
      let s = "";
      for (const b of new Uint8Array(buf)) s += String.fromCharCode(b);
      return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    },
    dec(str) {
      str = str.replace(/-/g, "+").replace(/_/g, "/");
      while (str.length % 4) str += "=";
      return Uint8Array.from(atob(str), (c) => c.charCodeAt(0)).buffer;
    },
  };
  function show(msg) {
    let p = document.getElementById("message");
    if (!p) {
      p = document.createElement("p");
      p.id = "message";
      p.className = "msg";
      document.body.insertBefore(p, document.body.children[1] || null);
    }
    p.textContent = msg;
  }
  async function post(url, body) {
    const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) });
    const j = await r.json().catch(() => ({ error: r.statusText }));
    if (!r.ok) throw new Error(j.error || r.statusText);
    return j;
  }
  function credentialJSON(c) {
    const out = { id: c.id, rawId: b64u.enc(c.rawId), type: c.type, response: {} };
    for (const k of ["clientDataJSON", "attestationObject", "authenticatorData", "signature", "userHandle"]) {
      if (c.response[k]) out.response[k] = b64u.enc(c.response[k]);
    }
    if (c.response.getTransports) out.response.transports = c.response.getTransports();
    out.clientExtensionResults = c.getClientExtensionResults ? c.getClientExtensionResults() : {};
    if (c.authenticatorAttachment) out.authenticatorAttachment = c.authenticatorAttachment;
    return out;
  }
  async function signIn() {
    try {
      const begin = await post("/.noops/passkey/login/begin");
      const o = begin.options.publicKey;
      o.challenge = b64u.dec(o.challenge);
      (o.allowCredentials || []).forEach((c) => (c.id = b64u.dec(c.id)));
      const cred = await navigator.credentials.get({ publicKey: o });
      const rd = (document.querySelector("input[name=rd]") || {}).value || "/";
      const done = await post("/.noops/passkey/login/finish?token=" + encodeURIComponent(begin.token) + "&rd=" + encodeURIComponent(rd), credentialJSON(cred));
      location.assign(done.rd);
    } catch (e) {
      show("Passkey sign-in failed: " + e.message);
    }
  }
  async function register() {
    try {
      const begin = await post("/.noops/passkey/register/begin");
      const o = begin.options.publicKey;
      o.challenge = b64u.dec(o.challenge);
      o.user.id = b64u.dec(o.user.id);
      (o.excludeCredentials || []).forEach((c) => (c.id = b64u.dec(c.id)));
      const cred = await navigator.credentials.create({ publicKey: o });
      await post("/.noops/passkey/register/finish?token=" + encodeURIComponent(begin.token), credentialJSON(cred));
      show("Passkey added.");
      const n = document.getElementById("count");
      if (n) n.textContent = String(Number(n.textContent) + 1);
    } catch (e) {
      show("Adding the passkey failed: " + e.message);
    }
  }
  document.addEventListener("DOMContentLoaded", () => {
    const s = document.getElementById("passkey");
    if (s) s.addEventListener("click", signIn);
    const a = document.getElementById("add-passkey");
    if (a) a.addEventListener("click", register);
  });
})();
