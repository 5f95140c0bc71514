// Progressive enhancement: re-fetch this page and swap the element marked data-refresh-seconds.
// Without JavaScript the page simply does not refresh; every action still works.
//
// Each answer carries the server's current interval in that attribute (0 when the
// dashboard_auto_refresh flag is off, or the order is final), so switching the flag off stops the
// pages already open at their next refresh. A refresh answered with the login page (a redirect)
// or 401 stops and says the session ended; one that fails (or gets no answer in time) keeps the
// page, says since when it is stale, and tries again at the same interval.
(function () {
  "use strict";
  var region = document.querySelector("[data-refresh-seconds]");
  if (!region || !window.fetch || !window.DOMParser) { return; }
  var seconds = secondsOf(region);
  if (!seconds) { return; }
  var lastRefreshed = new Date();
  var note = null;

  function secondsOf(element) {
    var value = parseFloat(element.getAttribute("data-refresh-seconds"));
    return value > 0 ? value : 0;
  }

  function clock(date) {
    return date.toISOString().slice(11, 19) + " UTC";  // the pages show UTC times
  }

  function show(kind) {
    if (!note) {
      note = document.createElement("p");
      note.setAttribute("role", "status");
      region.parentNode.insertBefore(note, region);
    }
    note.className = "refresh-note " + kind;
    note.textContent = "";
    return note;
  }

  function stale() {
    show("stale").textContent = "stale: last refreshed at " + clock(lastRefreshed) +
      " (the refresh failed; trying again every " + seconds + " s)";
  }

  function sessionEnded() {
    var line = show("ended");
    line.appendChild(document.createTextNode("Session ended - "));
    var link = document.createElement("a");
    link.href = window.location.href;
    link.textContent = "reload to sign in";
    line.appendChild(link);
  }

  function isLoginPage(response) {
    try {
      return response.redirected && /\/login$/.test(new URL(response.url).pathname);
    } catch (e) {
      return false;
    }
  }

  function swap(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var fresh = doc.getElementById(region.id);
    if (!fresh) {
      if (doc.querySelector("input[type=password]")) { return sessionEnded(); }
      throw new Error("the answer has no #" + region.id);
    }
    region.replaceWith(fresh);
    region = fresh;
    lastRefreshed = new Date();
    if (note) { note.remove(); note = null; }
    seconds = secondsOf(fresh);
    if (seconds) { schedule(); }  // 0: auto-refresh was switched off - stop here
  }

  // A server that accepts the connection but never answers must not stop the refreshing for
  // good: give up on a fetch after its interval (at least 2 s, at most 10 s) and call it failed.
  function timeoutMs() { return Math.min(10, Math.max(2, seconds)) * 1000; }

  function refresh() {
    if (document.hidden) { return schedule(); }
    var controller = window.AbortController ? new AbortController() : null;
    var timer = controller && window.setTimeout(function () { controller.abort(); }, timeoutMs());
    fetch(window.location.href, {
      credentials: "same-origin", cache: "no-store", headers: { "Accept": "text/html" },
      signal: controller ? controller.signal : undefined
    })
      .then(function (response) {
        if (response.status === 401 || isLoginPage(response)) { return sessionEnded(); }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text().then(swap);
      })
      .catch(function () {
        stale();
        schedule();
      })
      .then(function () { window.clearTimeout(timer); });
  }

  function schedule() { window.setTimeout(refresh, seconds * 1000); }
  schedule();
})();
