// One way of showing times on every page of the site: the visitor's local
// time with its zone, and how long ago or how soon. The server writes UTC
// (<time datetime=... data-time>, readable without JavaScript); this repaints
// it, and keeps the relative part ticking.
(function () {
  "use strict";

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

  function paint(node) {
    var iso = node.getAttribute("datetime");
    var date = new Date(iso);
    if (isNaN(date.getTime())) return;
    node.textContent = date.toLocaleString([], FORMAT) + " (" + relative(date) + ")";
    // The exact instant, for whoever hovers.
    node.title = date.toString();
  }

  function paintAll(root) {
    (root || document).querySelectorAll("time[data-time]").forEach(paint);
  }

  window.SiteTimes = { paint: paint, paintAll: paintAll };
  paintAll();
  setInterval(paintAll, 1000);
})();
