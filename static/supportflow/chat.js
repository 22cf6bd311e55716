/* SupportFlow live chat: the customer page and the agent console's ticket thread.
 *
 * htmx's ws extension owns the socket and swaps incoming fragments. This script adds what keeps a
 * conversation whole:
 * - every message carries a client id; it shows as "sending" until the server's copy (same id) comes
 *   back, and is re-sent (idempotently) after a reconnect if it never did;
 * - on every (re)connect it asks for everything after the last sequence number it has;
 * - the thread is kept unique and ordered by sequence number, so a message never shows twice;
 * - when the socket is down it posts over HTTP and polls for new messages until it is back.
 * No eval, no inline script: the page's CSP allows scripts from our origin only. The words it shows come
 * translated from the page (data-text-* on the socket's element); English where a page gives none.
 */
(function () {
  "use strict";

  var root = document.querySelector("[ws-connect]");
  var list = document.getElementById("messages");
  if (!root || !list) { return; }

  var form = document.getElementById("composer");
  var conn = document.getElementById("connection");
  var socket = null;
  var open = false;
  var everOpened = false;
  var lastSeq = 0;
  var pending = {};            // client id -> {body, sentAt}
  var pollTimer = null;
  var lastTyping = 0;

  function newId() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function label(name, english) {
    return root.getAttribute("data-text-" + name) || english;
  }

  function setConnection(text, state) {
    if (!conn) { return; }
    conn.textContent = text;
    conn.dataset.state = state;
  }

  /* Unique by sequence number, in order; confirmed pending bubbles removed. */
  function normalize() {
    var seen = {};
    var items = Array.prototype.slice.call(list.querySelectorAll("li.msg[data-seq]"));
    items.forEach(function (li) {
      var seq = parseInt(li.dataset.seq, 10);
      if (seen[seq]) { li.remove(); return; }
      seen[seq] = true;
      if (seq > lastSeq) { lastSeq = seq; }
      var cid = li.dataset.clientId;
      if (cid && pending[cid]) {
        delete pending[cid];
        var bubble = list.querySelector('li.msg-pending[data-pending-id="' + cid + '"]');
        if (bubble) { bubble.remove(); }
      }
    });
    var kept = Array.prototype.slice.call(list.querySelectorAll("li.msg[data-seq]"));
    var sorted = kept.slice().sort(function (a, b) { return a.dataset.seq - b.dataset.seq; });
    var inOrder = kept.every(function (li, i) { return li === sorted[i]; });
    if (!inOrder) { sorted.forEach(function (li) { list.appendChild(li); }); }
    list.querySelectorAll("li.msg-pending").forEach(function (li) { list.appendChild(li); });
    list.scrollTop = list.scrollHeight;
  }

  function handleNotices() {
    document.querySelectorAll(".notice[data-expires]").forEach(function (el) {
      var ms = parseInt(el.dataset.expires, 10) || 4000;
      el.removeAttribute("data-expires");
      setTimeout(function () { el.textContent = ""; }, ms);
    });
    var error = document.getElementById("chat-error");
    if (error && error.dataset.clientId && pending[error.dataset.clientId]) {
      failPending(error.dataset.clientId);
      error.removeAttribute("data-client-id");
    }
    var status = document.getElementById("chat-status");
    if (status && form) {
      var closed = status.dataset.status === "closed";
      form.querySelectorAll("textarea, button").forEach(function (el) { el.disabled = closed; });
    }
  }

  function addPending(cid, body) {
    pending[cid] = { body: body, sentAt: Date.now() };
    var li = document.createElement("li");
    li.className = "msg msg-customer msg-pending";
    li.dataset.pendingId = cid;
    var meta = document.createElement("div");
    meta.className = "msg-meta";
    meta.textContent = label("sending", "You · sending…");
    var text = document.createElement("div");
    text.className = "msg-body";
    text.textContent = body;  // text, never HTML
    li.appendChild(meta);
    li.appendChild(text);
    list.appendChild(li);
    list.scrollTop = list.scrollHeight;
  }

  /* The server refused it (limit, length, closed): nothing was stored; give the text back. */
  function failPending(cid) {
    var item = pending[cid];
    delete pending[cid];
    var bubble = list.querySelector('li.msg-pending[data-pending-id="' + cid + '"]');
    if (bubble) { bubble.remove(); }
    if (item && form && form.body && !form.body.value) { form.body.value = item.body; }
  }

  function applyFragments(html) {
    var template = document.createElement("template");
    template.innerHTML = html;
    Array.prototype.slice.call(template.content.children).forEach(function (el) {
      var oob = el.getAttribute("hx-swap-oob") || "";
      if (oob.indexOf("beforeend:") === 0) {
        var target = document.querySelector(oob.slice("beforeend:".length));
        if (target) { Array.prototype.slice.call(el.children).forEach(function (c) { target.appendChild(c); }); }
      } else if (el.id && document.getElementById(el.id)) {
        el.removeAttribute("hx-swap-oob");
        document.getElementById(el.id).replaceWith(el);
        if (window.htmx) { htmx.process(el); }
      }
    });
    normalize();
    handleNotices();
  }

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function postOverHttp(cid, body) {
    var data = new FormData();
    data.append("body", body);
    data.append("client_id", cid);
    fetch(root.dataset.sendUrl, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "HX-Request": "true", "X-CSRFToken": csrfToken() }
    }).then(function (r) { return r.text(); })
      .then(applyFragments)
      .catch(function () { /* still pending: re-sent when the socket is back */ });
  }

  function poll() {
    if (!root.dataset.messagesUrl) { return; }
    fetch(root.dataset.messagesUrl + "?after=" + lastSeq, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : ""; })
      .then(function (html) { if (html) { applyFragments(html); } })
      .catch(function () {});
  }

  function startPolling() {
    if (!pollTimer && root.dataset.messagesUrl) { pollTimer = setInterval(poll, 3000); }
  }

  function stopPolling() {
    if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
  }

  function resendPending() {
    Object.keys(pending).forEach(function (cid) {
      socket.send(JSON.stringify({ type: "message", body: pending[cid].body, client_id: cid }));
    });
  }

  document.body.addEventListener("htmx:wsOpen", function (e) {
    socket = e.detail.socketWrapper;
    open = true;
    everOpened = true;
    setConnection(label("connected", "Connected"), "open");
    stopPolling();
    socket.send(JSON.stringify({ type: "resync", after: lastSeq }));
    resendPending();
  });

  document.body.addEventListener("htmx:wsClose", function () {
    open = false;
    if (everOpened) {
      setConnection(label("reconnecting", "Reconnecting…"), "closed");
    } else {
      setConnection(label("polling", "Live updates unavailable; checking every few seconds"), "polling");
    }
    startPolling();
  });

  document.body.addEventListener("htmx:wsError", function () {
    if (!everOpened) { setConnection(label("polling", "Live updates unavailable; checking every few seconds"), "polling"); }
    startPolling();
  });

  document.body.addEventListener("htmx:wsAfterMessage", function () {
    normalize();
    handleNotices();
  });

  if (form) {
    /* Runs before htmx's own submit handler: when the socket is down, post over HTTP instead. */
    form.addEventListener("submit", function (e) {
      var body = form.body.value.trim();
      if (!body) { e.preventDefault(); e.stopImmediatePropagation(); return; }
      if (!open) {
        e.preventDefault();
        e.stopImmediatePropagation();
        var cid = newId();
        addPending(cid, body);
        form.body.value = "";
        postOverHttp(cid, body);
      }
    });

    document.body.addEventListener("htmx:wsConfigSend", function (e) {
      if (e.target !== form) { return; }
      var cid = newId();
      e.detail.parameters.client_id = cid;
      delete e.detail.headers;
      addPending(cid, e.detail.parameters.body.trim());
      form.body.value = "";
      form.body.focus();
    });

    form.body.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        form.requestSubmit();
      }
    });
  }

  /* Delegated: the console's reply box is swapped by htmx after each send. */
  document.addEventListener("input", function (e) {
    if (!e.target.matches || !e.target.matches("textarea[data-typing]")) { return; }
    var now = Date.now();
    if (open && socket && now - lastTyping > 2000) {
      lastTyping = now;
      socket.send(JSON.stringify({ type: "typing" }));
    }
  });

  setConnection(label("connecting", "Connecting…"), "connecting");
  normalize();
  handleNotices();
  startPolling();  // until the socket opens; stopped on open
})();

/* Agent console queue: a small poll says when conversations changed; the list reloads itself
 * unless the agent has tickets selected (then the banner offers the refresh). */
(function () {
  "use strict";
  document.body.addEventListener("htmx:afterSettle", function () {
    var banner = document.getElementById("sf-queue-updates");
    if (!banner) { return; }
    var count = parseInt(banner.dataset.count || "0", 10);
    if (count > 0 && !document.querySelector("#result_list input.action-select:checked")) {
      window.location.reload();
    }
  });
})();
