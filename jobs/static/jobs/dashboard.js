// The dashboard's live updates: every few seconds fetch this page's live region
// (the same URL with ?partial=1, rendered by the server) and swap it in.
// Without JavaScript every page is complete and every action a plain form.
(function () {
  "use strict";

  // Destructive forms ask first (delegated, so it survives region swaps): the
  // question is on the form, or on the button pressed when a form has several.
  // A yes goes with the form as "confirmed"; without it (or without this
  // script) the server answers with a confirmation page instead of acting.
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    var form = event.target;
    var question = (button && button.getAttribute("data-confirm")) ||
      form.getAttribute("data-confirm");
    if (!question) return;
    if (!window.confirm(question)) {
      event.preventDefault();
      return;
    }
    if (!form.querySelector("input[name=confirmed]")) {
      var yes = document.createElement("input");
      yes.type = "hidden";
      yes.name = "confirmed";
      yes.value = "1";
      form.appendChild(yes);
    }
  });

  // A time picked in the browser's zone goes to the server as a UTC instant.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-local-time") || event.defaultPrevented) return;
    var picked = new Date(form.elements.run_at.value);
    if (!isNaN(picked.getTime())) form.elements.run_at_utc.value = picked.toISOString();
  });

  // "Tick every job on this page" ticks the rows' boxes (they belong to the
  // bulk form above the list, through their form attribute).
  document.addEventListener("change", function (event) {
    if (!event.target.hasAttribute("data-select-page")) return;
    document.querySelectorAll("input[name=ids][form=bulk]").forEach(function (box) {
      box.checked = event.target.checked;
    });
  });

  // Times read as on the rest of the site: the visitor's local time with its
  // zone, and how long ago or how soon. The server writes UTC, readable
  // without JavaScript; this repaints it, and keeps the relative part ticking.
  var FORMAT = {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
    timeZoneName: "short"
  };

  function relative(date) {
    var seconds = Math.round((date.getTime() - Date.now()) / 1000);
    var abs = Math.abs(seconds);
    if (abs < 2) return "now";
    var text;
    if (abs < 90) text = abs + " s";
    else if (abs < 90 * 60) text = Math.round(abs / 60) + " min";
    else if (abs < 36 * 3600) text = Math.round(abs / 3600) + " h";
    else text = Math.round(abs / 86400) + " days";
    return seconds > 0 ? "in " + text : text + " ago";
  }

  function paintTimes(root) {
    root.querySelectorAll("time[data-time]").forEach(function (node) {
      var date = new Date(node.getAttribute("datetime"));
      if (isNaN(date.getTime())) return;
      node.textContent = date.toLocaleString([], FORMAT) + " (" + relative(date) + ")";
      node.title = date.toString();
    });
    // A chart's time axis: the local clock time only.
    root.querySelectorAll("time[data-clock]").forEach(function (node) {
      var date = new Date(node.getAttribute("datetime"));
      if (isNaN(date.getTime())) return;
      node.textContent = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      node.title = date.toString();
    });
  }

  paintTimes(document);
  window.setInterval(function () { paintTimes(document); }, 1000);

  var region = document.querySelector("[data-live-url]");
  if (!region || !window.fetch) return;
  var url = region.getAttribute("data-live-url");
  var seconds = parseFloat(region.getAttribute("data-live-seconds")) || 3;
  var controls = document.querySelector("[data-live-controls]");
  var status = controls.querySelector("[data-live-status]");
  var toggle = controls.querySelector("[data-live-toggle]");
  var paused = false;
  var stopped = false;
  var timer = null;
  var inflight = false;

  controls.hidden = false;

  function schedule() {
    window.clearTimeout(timer);
    if (!stopped) timer = window.setTimeout(refresh, seconds * 1000);
  }

  // Never pull the page from under someone: skip a beat while they are
  // focused on a button in the region, selecting text in it, or ticking rows.
  function busy() {
    // Ticked rows would be lost to a refresh: a list being acted on stays put.
    if (region.querySelector("input[name=ids]:checked")) return true;
    var active = document.activeElement;
    if (active && active !== region && region.contains(active)) return true;
    var selection = window.getSelection && window.getSelection();
    return !!(selection && !selection.isCollapsed && region.contains(selection.anchorNode));
  }

  function openDetails() {
    return Array.prototype.map.call(region.querySelectorAll("details[open][id]"), function (d) {
      return d.id;
    });
  }

  // Compared with the last fragment fetched, not with the region, whose
  // times have been repainted since.
  var lastHtml = null;

  function swap(html) {
    if (html === lastHtml) return;
    lastHtml = html;
    var open = openDetails();
    var closed = Array.prototype.map.call(region.querySelectorAll("details[id]:not([open])"), function (d) {
      return d.id;
    });
    region.innerHTML = html;
    open.forEach(function (id) { var d = document.getElementById(id); if (d) d.open = true; });
    closed.forEach(function (id) { var d = document.getElementById(id); if (d) d.open = false; });
    paintTimes(region);
  }

  function refresh() {
    if (inflight) return;
    if (!paused && region.querySelector("input[name=ids]:checked")) {
      status.textContent = "Updates wait while jobs are ticked.";
    }
    if (paused || document.hidden || busy()) return schedule();
    inflight = true;
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        // A redirect means the session ended (we would get the login page).
        if (response.redirected || !response.ok) {
          var error = new Error(response.redirected ? "logged out" : "HTTP " + response.status);
          error.fatal = response.redirected || response.status === 403 || response.status === 404;
          throw error;
        }
        return response.text();
      })
      .then(function (html) {
        swap(html);
        status.textContent = "Updated " + new Date().toLocaleTimeString() + ".";
      })
      .catch(function (error) {
        if (error.fatal) {
          stopped = true;
          toggle.hidden = true;
          status.textContent = "Live updates stopped (" + error.message + "). Reload the page.";
        } else {
          status.textContent = "Could not update (" + error.message + "); trying again.";
        }
      })
      .then(function () {
        inflight = false;
        schedule();
      });
  }

  toggle.addEventListener("click", function () {
    paused = !paused;
    toggle.setAttribute("aria-pressed", paused ? "true" : "false");
    toggle.textContent = paused ? "Resume updates" : "Pause updates";
    status.textContent = paused ? "Updates paused." : "Updates live every " + seconds + " s.";
    if (!paused) refresh();
  });

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && !paused) refresh();
  });

  schedule();
})();
