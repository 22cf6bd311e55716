/* SupportFlow agent console: keyboard shortcuts and the macro picker.
 *
 * List:   j / k move a visible focus over the rows, Enter or o opens the ticket, / goes to the search box.
 * Ticket: j / k next / previous ticket of the list the agent came from (the server renders those links),
 *         u back to the list, r reply, n internal note, m macro, a assign to me, e escalate,
 *         Shift+R resolve, Ctrl/Cmd+Enter send, Esc leaves the reply box.
 * Both:   ? opens the list of shortcuts (a <dialog>).
 * A shortcut never fires while the agent types in a field, except Ctrl/Cmd+Enter. Every shortcut only
 * clicks or focuses a control that is on the page anyway: nothing here is reachable only by keyboard or
 * only by mouse.
 *
 * The macro picker: typing "/" at the start of a word in the reply box lists the macros (an ARIA listbox
 * driven from the box with aria-activedescendant); Enter asks the server to render the chosen one for
 * this ticket, puts the text in place of "/word" and remembers the macro in the form, whose actions the
 * server applies when the reply is sent. No eval, no inline script, no HTML built from text: the chip
 * that says what a macro will do comes rendered (and escaped) by the server.
 */
(function () {
  "use strict";

  var dialog = document.getElementById("sf-shortcuts");
  var status = null;

  function say(key, name) {
    var text = (dialog && dialog.dataset[key]) || "";
    if (!text) { return; }
    if (!status) {
      status = document.createElement("p");
      status.id = "sf-kbd-status";
      status.className = "sf-kbd-status";
      status.setAttribute("role", "status");
      document.body.appendChild(status);
    }
    status.textContent = text.replace("%(name)s", name || "");
    clearTimeout(say.timer);
    say.timer = setTimeout(function () { status.textContent = ""; }, 5000);
  }

  function isTyping(el) {
    if (!el || el === document.body) { return false; }
    if (el.isContentEditable) { return true; }
    var tag = el.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") { return true; }
    if (tag !== "INPUT") { return false; }
    return ["checkbox", "radio", "button", "submit", "reset", "image", "file", "range", "color"].indexOf(el.type) < 0;
  }

  function click(selector, missing) {
    var el = document.querySelector(selector);
    if (el) { el.click(); } else { say(missing); }
  }

  /* --- the ticket list ------------------------------------------------------------------------------ */

  var rows = [];
  var current = -1;

  function rowLink(row) {
    return row.querySelector("th a[href], td a[href]");
  }

  function moveRow(step) {
    rows = Array.prototype.slice.call(document.querySelectorAll("#result_list tbody tr"));
    if (!rows.length) { return; }
    if (current >= rows.length) { current = rows.length - 1; }
    var next = current < 0 ? (step > 0 ? 0 : rows.length - 1) : Math.min(rows.length - 1, Math.max(0, current + step));
    if (current >= 0 && rows[current]) { rows[current].classList.remove("sf-row-focus"); }
    current = next;
    var row = rows[current];
    row.classList.add("sf-row-focus");
    var link = rowLink(row);
    if (link) { link.focus({ preventScroll: true }); }
    row.scrollIntoView({ block: "nearest" });
  }

  function openRow() {
    if (current < 0) { moveRow(1); }
    var row = rows[current];
    var link = row && rowLink(row);
    if (link) { link.click(); }
  }

  /* --- the ticket page ------------------------------------------------------------------------------- */

  function replyBox() {
    return document.querySelector("#sf-reply textarea[name=body]");
  }

  function focusReply(internal) {
    var box = replyBox();
    if (!box) { say("msgNoReply"); return null; }
    var note = document.querySelector("#sf-reply input[name=is_internal]");
    if (note && note.checked !== internal) {
      note.checked = internal;
      note.dispatchEvent(new Event("change", { bubbles: true }));
    }
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
    return box;
  }

  function sendReply() {
    var form = document.getElementById("sf-reply");
    if (form) { closePicker(); form.requestSubmit(); }
  }

  /* --- the macro picker ------------------------------------------------------------------------------ */

  var picker = { open: false, start: -1, active: null };

  function listbox() { return document.getElementById("sf-macro-list"); }

  /* The line under the reply box (a polite live region): why a macro did not come, or none matches. */
  function statusLine(text) {
    var line = document.getElementById("sf-macro-status");
    if (line) { line.textContent = text; }
  }

  function visibleOptions() {
    var list = listbox();
    return list ? Array.prototype.filter.call(list.querySelectorAll("[role=option]"), function (o) { return !o.hidden; }) : [];
  }

  function setActive(option) {
    var box = replyBox();
    if (picker.active) { picker.active.setAttribute("aria-selected", "false"); }
    picker.active = option;
    if (option) {
      option.setAttribute("aria-selected", "true");
      option.scrollIntoView({ block: "nearest" });
      if (box) { box.setAttribute("aria-activedescendant", option.id); }
    } else if (box) {
      box.removeAttribute("aria-activedescendant");
    }
  }

  function closePicker() {
    var list = listbox();
    if (list) { list.hidden = true; }
    picker.open = false;
    setActive(null);
  }

  /* The "/word" right before the caret, if the caret is in one. */
  function slashToken(box) {
    var before = box.value.slice(0, box.selectionStart);
    var match = /(^|\s)\/([^\s\/]*)$/.exec(before);
    if (!match) { return null; }
    return { start: before.length - match[2].length - 1, query: match[2].toLowerCase() };
  }

  function updatePicker(box) {
    var list = listbox();
    var token = box && list ? slashToken(box) : null;
    if (!token) {
      if (picker.open || picker.start >= 0) { statusLine(""); }
      closePicker();
      picker.start = -1;
      return;
    }
    var words = token.query.split(/[-_]+/).join(" ");
    var shown = 0;
    Array.prototype.forEach.call(list.querySelectorAll("[role=option]"), function (option) {
      var match = option.dataset.name.indexOf(words) >= 0 || option.dataset.name.indexOf(token.query) >= 0;
      option.hidden = !match;
      if (match) { shown += 1; }
    });
    picker.start = token.start;
    if (!shown) {
      closePicker();
      statusLine(dialog ? dialog.dataset.msgMacroNone : "");
      return;
    }
    statusLine("");
    list.hidden = false;
    picker.open = true;
    var options = visibleOptions();
    setActive(options.indexOf(picker.active) >= 0 ? picker.active : options[0]);
  }

  function movePicker(step) {
    var options = visibleOptions();
    if (!options.length) { return; }
    var index = options.indexOf(picker.active) + step;
    setActive(options[(index + options.length) % options.length]);
  }

  function remember(form, macroId) {
    var field = form.querySelector("input[name=macros]");
    if (!field) { return; }
    var ids = field.value ? field.value.split(",") : [];
    if (ids.indexOf(String(macroId)) < 0) { ids.push(String(macroId)); }
    field.value = ids.join(",");
  }

  function forget(form, macroId) {
    var field = form.querySelector("input[name=macros]");
    if (!field) { return; }
    field.value = field.value.split(",").filter(function (id) { return id && id !== String(macroId); }).join(",");
  }

  function choose(option) {
    var box = replyBox();
    if (!box || !option) { return; }
    var start = picker.start;
    var end = box.selectionStart;
    closePicker();
    fetch(option.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json().then(function (data) { return { ok: response.ok, data: data }; });
      })
      .then(function (result) {
        var form = document.getElementById("sf-reply");
        var area = replyBox();
        if (!result.ok || !form || !area) {
          statusLine((result.data && result.data.error) || (dialog ? dialog.dataset.msgMacroFailed : ""));
          return;
        }
        statusLine("");
        var data = result.data;
        area.value = area.value.slice(0, start) + data.text + area.value.slice(end);
        var caret = start + data.text.length;
        area.focus();
        area.setSelectionRange(caret, caret);
        area.dispatchEvent(new Event("input", { bubbles: true }));
        remember(form, data.macro);
        var chips = form.querySelector("#sf-macro-chips");
        if (chips && !chips.querySelector('[data-macro="' + data.macro + '"]')) {
          var template = document.createElement("template");
          template.innerHTML = data.chip;  // rendered and escaped by the server's template
          chips.appendChild(template.content);
        }
        say("msgMacroInserted", data.name);
      })
      .catch(function () { say("msgMacroFailed"); });
  }

  function openPickerByKey() {
    var box = focusReply(false);
    if (!box) { return; }
    var caret = box.selectionStart;
    var before = box.value.slice(0, caret);
    var slash = before === "" || /\s$/.test(before) ? "/" : " /";
    box.value = before + slash + box.value.slice(caret);
    box.setSelectionRange(caret + slash.length, caret + slash.length);
    updatePicker(box);
  }

  document.addEventListener("input", function (e) {
    if (e.target === replyBox()) { updatePicker(e.target); }
  });

  document.addEventListener("change", function (e) {
    if (e.target.matches && e.target.matches("#sf-reply input[name=is_internal]")) {
      document.getElementById("sf-reply").classList.toggle("sf-reply-internal", e.target.checked);
    }
  });

  document.addEventListener("mousedown", function (e) {
    var option = e.target.closest && e.target.closest("#sf-macro-list [role=option]");
    if (option) { e.preventDefault(); choose(option); }
  });

  document.addEventListener("click", function (e) {
    var remove = e.target.closest && e.target.closest(".sf-macro-remove");
    if (remove) {
      var chip = remove.closest(".sf-macro-chip");
      var form = remove.closest("form");
      if (chip && form) { forget(form, chip.dataset.macro); chip.remove(); }
      return;
    }
    if (e.target.closest && e.target.closest("[data-sf-shortcuts]") && dialog) { dialog.showModal(); }
    if (picker.open && !(e.target.closest && e.target.closest("#sf-macro-list"))) { closePicker(); }
  });

  /* After a send the reply box is swapped for an empty one (htmx keeps the focus in it): leave it,
   * so the next keys are shortcuts again (Shift+R to resolve, j for the next ticket). */
  document.addEventListener("htmx:afterSettle", function () {
    var sent = document.querySelector("#sf-reply .sf-ok:not([data-seen])");
    if (!sent) { return; }
    sent.setAttribute("data-seen", "");
    if (document.activeElement && document.activeElement.closest && document.activeElement.closest("#sf-reply")) {
      document.activeElement.blur();
    }
  });

  /* --- the keys -------------------------------------------------------------------------------------- */

  var onTicket = !!document.querySelector(".sf-workspace");
  var onList = !!document.getElementById("result_list");

  function inReplyBox(e) {
    return e.target === replyBox();
  }

  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.isComposing) { return; }
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      if (e.target.closest && e.target.closest("#sf-reply")) { e.preventDefault(); sendReply(); }
      return;
    }
    if (inReplyBox(e)) {
      if (picker.open) {
        if (e.key === "ArrowDown" || e.key === "ArrowUp") { e.preventDefault(); movePicker(e.key === "ArrowDown" ? 1 : -1); }
        else if (e.key === "Enter" || e.key === "Tab") { e.preventDefault(); choose(picker.active); }
        else if (e.key === "Escape") { e.preventDefault(); closePicker(); }
        return;
      }
      if (e.key === "Escape") { e.preventDefault(); e.target.blur(); }
      return;
    }
    if (e.altKey || e.ctrlKey || e.metaKey || isTyping(e.target)) { return; }
    if (dialog && dialog.open) { return; }
    if (e.key === "?") { e.preventDefault(); if (dialog) { dialog.showModal(); } return; }
    if (onTicket) {
      var handlers = {
        j: function () { click("[data-sf-nav=next]", "msgNoNext"); },
        k: function () { click("[data-sf-nav=prev]", "msgNoPrev"); },
        u: function () { click("[data-sf-nav=list]", ""); },
        r: function () { focusReply(false); },
        n: function () { focusReply(true); },
        m: openPickerByKey,
        a: function () { click("[data-sf-action=assign_me]", "msgNoAssign"); },
        e: function () {
          var reason = document.getElementById("id_reason");
          if (reason) { reason.focus(); } else { say("msgNoEscalate"); }
        },
        R: function () { click("[data-sf-action=resolve]", "msgNoResolve"); }
      };
      var handler = handlers[e.key];
      if (handler && (e.key !== "R" || e.shiftKey)) { e.preventDefault(); handler(); }
      return;
    }
    if (onList) {
      if (e.key === "j") { e.preventDefault(); moveRow(1); }
      else if (e.key === "k") { e.preventDefault(); moveRow(-1); }
      else if (e.key === "o") { e.preventDefault(); openRow(); }
      else if (e.key === "/" && searchbar) { e.preventDefault(); searchbar.focus(); searchbar.select(); }
    }
  });

  /* The admin puts the focus in the list's search box, where j and k would be typed: the list opens with
   * the shortcuts working instead, and "/" goes to the search box (as on GitHub or Gmail). */
  var searchbar = document.getElementById("searchbar");
  if (onList && searchbar && document.activeElement === searchbar && !searchbar.value) { searchbar.blur(); }
})();
