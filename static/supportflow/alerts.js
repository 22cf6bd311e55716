// The AI alerts banner (analytics/alerts.py): fetched after the page, so a console page itself never pays for
// computing the alerts. The fragment is server-rendered and escaped; an empty answer means nothing to show.
(function () {
  "use strict";
  var slot = document.getElementById("sf-alerts");
  if (!slot || !window.fetch) return;
  fetch(slot.dataset.src, { credentials: "same-origin", headers: { Accept: "text/html" } })
    .then(function (response) { return response.ok ? response.text() : ""; })
    .then(function (html) { if (html.trim()) slot.innerHTML = html; })
    .catch(function () {});
})();
