/* SupportFlow website widget, the framed side: our chat pages inside the site's iframe (tickets.widget).
 *
 * The site's page (widget.js) talks to this page with postMessage only:
 * - it sends {type: "sf:init", token, user} after every load, to our origin; this page accepts it only from
 *   its parent and from one of the site's allowed origins (data-widget-origins; the CSP frame-ancestors
 *   already limits the parent to those), and answers to exactly that origin, never "*";
 * - this page sends "sf:ready", "sf:conversation" (the token to keep in the site's own storage: no cookie is
 *   needed here), "sf:reply" (an agent or AI reply arrived: the unread badge), "sf:close" (Esc) and
 *   "sf:identity-refused".
 * Every POST goes to the widget's token-bound twin of the chat's routes (no CSRF cookie in a third-party
 * frame); links that leave the chat open in a new tab (our other pages refuse to be framed).
 */
(function () {
  "use strict";

  var body = document.body;
  var kind = body.dataset.widgetKind;
  if (!kind) { return; }
  var origins = [];
  try { origins = JSON.parse(body.dataset.widgetOrigins || "[]"); } catch (e) { origins = []; }
  var startUrl = body.dataset.widgetStart;
  var parentOrigin = null;

  function tell(message) {
    if (parentOrigin && window.parent !== window) { window.parent.postMessage(message, parentOrigin); }
  }

  function hideField(id) {
    var input = document.getElementById(id);
    var field = input && input.closest(".field");
    if (field) { field.hidden = true; }
  }

  function setValue(name, value) {
    var input = document.querySelector("input[name=" + name + "]");
    if (input) { input.value = value || ""; }
  }

  /* A signed-in visitor: their identity goes in the hidden fields; the server checks the hash. */
  function applyIdentity(user) {
    if (!user || typeof user.id !== "string" || !user.id) { return; }
    setValue("user_id", user.id);
    setValue("user_email", user.email);
    setValue("user_name", user.name);
    setValue("user_hash", user.hash);
    setValue("name", user.name || user.id);
    if (user.email) { setValue("email", user.email); }
    hideField("id_name");
    hideField("id_email");
    var note = document.getElementById("widget-identity");
    if (note) {
      note.textContent = user.name || user.email || user.id;
      note.hidden = false;
    }
  }

  function onInit(data) {
    if (kind === "conversation") {
      tell({ type: "sf:conversation", token: body.dataset.widgetToken || "" });
    } else {
      var fresh = /[?&]new=1/.test(location.search) || body.hasAttribute("data-widget-forget");
      if (body.hasAttribute("data-widget-forget")) { tell({ type: "sf:conversation", token: "" }); }
      if (typeof data.token === "string" && /^[\w:.-]{10,300}$/.test(data.token) && !fresh) {
        location.replace(startUrl + "c/" + encodeURIComponent(data.token) + "/" + location.search);
        return;
      }
      if (body.hasAttribute("data-widget-identity-refused")) {
        tell({ type: "sf:identity-refused" });
      } else {
        applyIdentity(data.user);
      }
    }
    tell({ type: "sf:ready" });
  }

  window.addEventListener("message", function (e) {
    if (e.source !== window.parent || origins.indexOf(e.origin) === -1) { return; }
    var data = e.data || {};
    if (data.type === "sf:init") {
      parentOrigin = e.origin;
      onInit(data);
    } else if (data.type === "sf:focus" && e.origin === parentOrigin) {
      var fields = [document.getElementById("body")].concat(
        Array.prototype.slice.call(document.querySelectorAll(".start-form input:not([type=hidden]), .start-form textarea")));
      var target = fields.filter(function (el) { return el && el.offsetParent !== null && !el.disabled; })[0];
      if (target) { target.focus(); }
    }
  });

  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape") { tell({ type: "sf:close" }); }
  });

  /* Our routes that take a POST, rewritten to their widget twin: /chat/c/<token>/… → <start>c/<token>/… */
  body.addEventListener("htmx:configRequest", function (e) {
    var path = e.detail.path || "";
    if (path.indexOf("/chat/c/") === 0) { e.detail.path = body.dataset.widgetActions + path.slice("/chat/c/".length); }
  });

  document.addEventListener("click", function (e) {
    var link = e.target.closest && e.target.closest("a[href]");
    if (!link) { return; }
    var url = new URL(link.href, location.href);
    if (url.origin === location.origin && url.pathname === "/chat/" && url.searchParams.get("new") === "1") {
      e.preventDefault();
      location.assign(startUrl + "?new=1");
    } else if (url.origin !== location.origin || url.pathname.indexOf(startUrl) !== 0) {
      link.target = "_blank";
      link.rel = "noopener";
    }
  });

  /* Replies that arrive after the page loaded (live or caught up): the site shows an unread badge. */
  var list = document.getElementById("messages");
  if (list && window.MutationObserver) {
    var seen = {};
    list.querySelectorAll("li.msg[data-seq]").forEach(function (li) { seen[li.dataset.seq] = true; });
    new MutationObserver(function (mutations) {
      mutations.forEach(function (m) {
        Array.prototype.forEach.call(m.addedNodes, function (node) {
          if (node.nodeType !== 1 || !node.matches("li.msg[data-seq]") || seen[node.dataset.seq]) { return; }
          seen[node.dataset.seq] = true;
          if (node.matches(".msg-agent, .msg-ai")) { tell({ type: "sf:reply", seq: node.dataset.seq }); }
        });
      });
    }).observe(list, { childList: true });
  }
})();
