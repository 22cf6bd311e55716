/* SupportFlow website widget: paste into your site (docs/widget.md)
 *   <script src="https://helpdesk.example/widget.js" data-site="site_…" async></script>
 * Optional: data-position="left", data-label, data-language (en, de, es, fr), and a signed-in visitor:
 * data-user-id, data-user-email, data-user-name, data-user-hash (hex HMAC-SHA256 of the user id with the
 * site's identity secret, computed on your server).
 *
 * A launcher button opens our chat in an iframe. The conversation's token is kept in this site's
 * localStorage and handed to the iframe by postMessage (no third-party cookie); messages from the iframe
 * are accepted only from our origin and that iframe. No dependencies, no inline styles in the page's DOM
 * (a shadow root with a constructed stylesheet), no eval.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || window.__supportflowWidget) { return; }
  window.__supportflowWidget = true;
  var origin = new URL(script.src, location.href).origin;
  var d = script.dataset;
  var site = d.site || "";

  function fail(text) { if (window.console) { console.error("SupportFlow widget: " + text); } }

  if (!/^[A-Za-z0-9_-]{4,40}$/.test(site)) { fail("data-site is missing or malformed."); return; }

  var WORDS = {
    en: ["Chat with us", "Close chat", "Support chat", "unread"],
    de: ["Chatten Sie mit uns", "Chat schließen", "Support-Chat", "ungelesen"],
    es: ["Chatea con nosotros", "Cerrar el chat", "Chat de soporte", "sin leer"],
    fr: ["Discutez avec nous", "Fermer le chat", "Chat d’assistance", "non lus"]
  };
  var lang = (d.language || document.documentElement.lang || "en").slice(0, 2).toLowerCase();
  var words = WORDS[lang] || WORDS.en;
  var label = d.label || words[0];
  var storeKey = "supportflow-widget:" + site;
  var user = d.userId ? { id: d.userId, email: d.userEmail || "", name: d.userName || "", hash: d.userHash || "" } : null;

  function stored() { try { return localStorage.getItem(storeKey) || ""; } catch (e) { return ""; } }
  function store(token) {
    try {
      if (token) { localStorage.setItem(storeKey, token); } else { localStorage.removeItem(storeKey); }
    } catch (e) { /* storage blocked: the conversation lasts as long as the page */ }
  }

  var CSS = ":host{all:initial}" +
    ".launcher{position:fixed;bottom:20px;" + (d.position === "left" ? "left" : "right") + ":20px;z-index:2147483000;" +
    "font:600 15px/1 system-ui,sans-serif;color:#fff;background:#1d4ed8;border:0;border-radius:24px;padding:14px 18px;" +
    "cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25)}" +
    ".launcher:focus-visible,.close:focus-visible{outline:3px solid #f59e0b;outline-offset:3px}" +
    ".badge{display:inline-block;min-width:1.4em;margin-left:8px;padding:2px 6px;border-radius:10px;background:#b91c1c;" +
    "font-size:12px;text-align:center}.badge[hidden],.panel[hidden]{display:none}" +
    ".panel{position:fixed;bottom:80px;" + (d.position === "left" ? "left" : "right") + ":20px;z-index:2147483000;" +
    "width:min(380px,calc(100vw - 40px));height:min(600px,calc(100vh - 110px));display:flex;flex-direction:column;" +
    "background:#fff;border-radius:12px;overflow:hidden;box-shadow:0 8px 30px rgba(0,0,0,.3)}" +
    ".bar{display:flex;justify-content:flex-end;background:#1d4ed8}" +
    ".close{font:600 14px system-ui,sans-serif;color:#fff;background:none;border:0;padding:8px 12px;cursor:pointer}" +
    "iframe{flex:1;width:100%;border:0}";

  var host = document.createElement("div");
  host.setAttribute("data-supportflow-widget", site);
  var root = host.attachShadow({ mode: "open" });
  if (root.adoptedStyleSheets !== undefined && window.CSSStyleSheet && CSSStyleSheet.prototype.replaceSync) {
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } else {
    var style = document.createElement("style");
    style.textContent = CSS;
    root.appendChild(style);
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text) { node.textContent = text; }
    return node;
  }

  var launcher = el("button", { type: "button", "class": "launcher", "aria-expanded": "false", "aria-controls": "sf-panel" });
  var launcherText = el("span", {}, label);
  var badge = el("span", { "class": "badge", "aria-hidden": "true", hidden: "" });
  launcher.appendChild(launcherText);
  launcher.appendChild(badge);
  var panel = el("div", { "class": "panel", id: "sf-panel", role: "dialog", "aria-label": words[2], hidden: "" });
  var bar = el("div", { "class": "bar" });
  var closeButton = el("button", { type: "button", "class": "close" }, "\u00d7 " + words[1]);
  bar.appendChild(closeButton);
  panel.appendChild(bar);
  root.appendChild(panel);
  root.appendChild(launcher);

  var frame = null;
  var ready = false;
  var unread = 0;
  var identityRefused = false;

  function setUnread(n) {
    unread = n;
    badge.textContent = String(n);
    badge.hidden = n === 0;
    launcher.setAttribute("aria-label", n ? label + " (" + n + " " + words[3] + ")" : label);
  }

  function post(message) { if (frame && frame.contentWindow) { frame.contentWindow.postMessage(message, origin); } }

  function ensureFrame() {
    if (frame) { return; }
    var src = origin + "/chat/widget/" + encodeURIComponent(site) + "/";
    if (d.language) { src += "?lang=" + encodeURIComponent(d.language); }
    frame = el("iframe", { title: words[2], src: src });
    frame.addEventListener("load", function () {
      ready = false;
      post({ type: "sf:init", token: stored(), user: identityRefused ? null : user });
    });
    panel.appendChild(frame);
  }

  function isOpen() { return !panel.hidden; }

  function open() {
    ensureFrame();
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    setUnread(0);
    frame.focus();
    if (ready) { post({ type: "sf:focus" }); }
  }

  function close() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }

  launcher.addEventListener("click", function () { if (isOpen()) { close(); } else { open(); } });
  closeButton.addEventListener("click", close);
  root.addEventListener("keydown", function (e) { if (e.key === "Escape" && isOpen()) { close(); } });

  window.addEventListener("message", function (e) {
    if (e.origin !== origin || !frame || e.source !== frame.contentWindow) { return; }
    var data = e.data || {};
    if (data.type === "sf:ready") {
      ready = true;
      if (isOpen()) { post({ type: "sf:focus" }); }
    } else if (data.type === "sf:conversation" && typeof data.token === "string") {
      store(data.token);
    } else if (data.type === "sf:reply") {
      if (!isOpen()) { setUnread(unread + 1); }
    } else if (data.type === "sf:close") {
      if (isOpen()) { close(); }
    } else if (data.type === "sf:identity-refused") {
      identityRefused = true;
      fail("the visitor identity was refused: data-user-hash is not the HMAC-SHA256 of data-user-id " +
        "with this site's identity secret. The visitor continues as a guest.");
    }
  });

  function mount() {
    document.body.appendChild(host);
    if (stored()) { ensureFrame(); }  // an ongoing conversation: load it now, so replies raise the badge
  }

  setUnread(0);
  if (document.body) { mount(); } else { document.addEventListener("DOMContentLoaded", mount); }
})();
