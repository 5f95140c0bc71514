// Progressive enhancement: re-fetch this page and swap the element marked data-refresh-seconds.
// Without JavaScript the page simply does not refresh; every action still works.
(function () {
  "use strict";
  var region = document.querySelector("[data-refresh-seconds]");
  if (!region || !window.fetch || !window.DOMParser) { return; }
  var seconds = parseInt(region.getAttribute("data-refresh-seconds"), 10);
  if (!seconds) { return; }
  function refresh() {
    if (document.hidden) { return schedule(); }
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(region.id);
        if (fresh) { region.replaceWith(fresh); region = fresh; }
      })
      .catch(function () { /* offline for a moment: keep the page as it is */ })
      .then(schedule);
  }
  function schedule() { window.setTimeout(refresh, seconds * 1000); }
  schedule();
})();
