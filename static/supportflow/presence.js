/* SupportFlow console: collision. Who else is on a ticket and who is typing (ticket page), who views
 * each ticket (list), and which messages the agent had seen when they wrote their reply.
 *
 * - One websocket per page (tickets/consumers_console.py): while it is open, the page counts as viewing
 *   the ticket (the server keeps it listed; a background tab's slowed timers do not matter). It says
 *   when its agent types a reply or a note (at most one signal per 3 s; only the kind, never the text).
 * - Incoming frames are server-rendered HTML fragments: each replaces the element with its id, or is
 *   appended to the container named by data-presence-into. No eval, no inline script (CSP).
 * - The reply form's last_seen_seq follows the live thread while the reply box is empty. Once the agent
 *   writes, it stays at what they had seen when they began: a message arriving meanwhile is what the
 *   server warns about before sending.
 */
(function () {
  "use strict";

  var TYPING_EVERY_MS = 3000;
  var REFUSED = 4403;

  var root = document.getElementById("sf-presence");
  if (!root || !window.WebSocket) { return; }
  var mode = root.dataset.mode;
  var socket = null;
  var retries = 0;
  var lastTyping = 0;

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) { socket.send(JSON.stringify(message)); }
  }

  function expire(el) {
    var ms = parseInt(el.dataset.presenceExpires, 10) || 6000;
    el.removeAttribute("data-presence-expires");
    setTimeout(function () { if (el.isConnected) { el.textContent = ""; } }, ms);
  }

  function apply(html) {
    var template = document.createElement("template");
    template.innerHTML = html;
    Array.prototype.slice.call(template.content.children).forEach(function (el) {
      var current = el.id ? document.getElementById(el.id) : null;
      var into = el.dataset.presenceInto ? document.getElementById(el.dataset.presenceInto) : null;
      if (current) {
        current.replaceWith(el);
      } else if (into) {
        into.appendChild(el);
      } else {
        return;
      }
      if (el.dataset.presenceExpires) { expire(el); }
    });
  }

  /* --- the list: one marker per row, filled by the server */

  function rowIds() {
    var ids = [];
    document.querySelectorAll("#result_list tbody tr").forEach(function (row) {
      var link = row.querySelector("a[href*='/tickets/ticket/']");
      var match = link && /\/tickets\/ticket\/(\d+)\/change\//.exec(link.getAttribute("href"));
      if (!match) { return; }
      var id = parseInt(match[1], 10);
      if (!document.getElementById("sf-row-viewers-" + id)) {
        var marker = document.createElement("span");
        marker.id = "sf-row-viewers-" + id;
        marker.className = "sf-row-viewers";
        link.parentNode.appendChild(marker);
      }
      ids.push(id);
    });
    return ids;
  }

  /* --- the ticket page: typing signals and what the agent had seen */

  function replyForm() { return document.getElementById("sf-reply"); }

  function newestShown() {
    var newest = 0;
    document.querySelectorAll("#messages li.msg[data-seq]").forEach(function (li) {
      newest = Math.max(newest, parseInt(li.dataset.seq, 10) || 0);
    });
    return newest;
  }

  function trackSeen() {
    var form = replyForm();
    var seen = form && form.querySelector("input[name=last_seen_seq]");
    var body = form && form.querySelector("textarea[name=body]");
    if (!seen) { return; }
    if (!seen.value || !body || !body.value.trim()) { seen.value = String(newestShown()); }
  }

  function watchTicketPage() {
    var thread = document.getElementById("messages");
    if (thread && window.MutationObserver) {
      new MutationObserver(trackSeen).observe(thread, { childList: true });
    }
    document.addEventListener("input", function (e) {
      var form = replyForm();
      if (!form || !form.contains(e.target)) { return; }
      if (e.target.name === "body") {
        trackSeen();
        var now = Date.now();
        if (e.target.value.trim() && now - lastTyping >= TYPING_EVERY_MS) {
          lastTyping = now;
          var note = form.querySelector("input[name=is_internal]");
          send({ type: "typing", kind: note && note.checked ? "note" : "reply" });
        }
      }
    });
    document.addEventListener("submit", function (e) {
      if (e.target === replyForm()) {
        lastTyping = 0;
        send({ type: "typing", kind: "idle" });
      }
    }, true);
    document.body.addEventListener("htmx:afterSwap", trackSeen);  // the reply box after a send or a warning
    trackSeen();
  }

  /* --- the socket */

  function url() {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + root.dataset.presencePath;
  }

  function connect() {
    socket = new WebSocket(url());
    socket.addEventListener("open", function () {
      retries = 0;
      if (mode === "list") { send({ type: "watch", tickets: rowIds() }); }
    });
    socket.addEventListener("message", function (e) { apply(e.data); });
    socket.addEventListener("close", function (e) {
      if (e.code === REFUSED) { return; }
      retries += 1;
      setTimeout(connect, Math.min(30000, 1000 * Math.pow(2, Math.min(retries, 5))));
    });
  }

  if (mode === "ticket") { watchTicketPage(); }
  connect();
})();
