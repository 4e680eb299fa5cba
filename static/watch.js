// The watch page's live updates: poll the JSON feed, redraw the two lists.
// Plain DOM (textContent only, so nothing from the server is parsed as HTML).
(function () {
  "use strict";

  var root = document.querySelector("[data-watch-url]");
  if (!root || !window.fetch) return;

  var url = root.getAttribute("data-watch-url");
  var emailList = root.querySelector("[data-emails]");
  var notices = root.querySelector("[data-notices]");
  var inbox = root.querySelector("[data-messages]");
  var announce = root.querySelector("[data-announce]");
  var note = document.getElementById("live-note");
  var FAST = 1500;   // something is about to happen
  var SLOW = 15000;  // nothing due soon; still notice resends and new mail
  var timer = null;
  var lastProgress = {};

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Painted as every time on the site is (times.js), ticking with them.
  function timeNode(iso) {
    var node = el("time");
    node.setAttribute("datetime", iso);
    node.setAttribute("data-time", "");
    window.SiteTimes.paint(node);
    return node;
  }

  function whenLine(row) {
    var p = el("p", "email-when");
    var add = function (text) { p.appendChild(document.createTextNode(text)); };
    switch (row.progress) {
      case "sent": add("Sent at "); p.appendChild(timeNode(row.finished_at)); break;
      case "skipped":
        add("Skipped at "); p.appendChild(timeNode(row.finished_at));
        if (row.note) add(": " + row.note);
        break;
      case "cancelled":
        add("Cancelled");
        if (row.finished_at) { add(" at "); p.appendChild(timeNode(row.finished_at)); }
        add(": it will not be sent");
        break;
      case "failed":
        add("Gave up after " + row.attempts + " attempts" + (row.error ? ": " + row.error : ""));
        break;
      case "sending": add("Sending now"); break;
      case "retrying":
        add("Attempt " + row.attempts + " failed" + (row.error ? " (" + row.error + ")" : "") +
            "; next try at ");
        p.appendChild(timeNode(row.next_attempt_at));
        break;
      default: add("Scheduled for "); p.appendChild(timeNode(row.next_attempt_at));
    }
    return p;
  }

  function renderEmails(rows) {
    var items = rows.map(function (row) {
      var li = el("li", "email-item");
      li.setAttribute("data-id", row.id);
      var header = el("header");
      header.appendChild(el("h3", "", row.label));
      header.appendChild(el("span", "badge badge-" + row.progress, row.progress_label));
      li.appendChild(header);
      li.appendChild(whenLine(row));
      return li;
    });
    if (!items.length) items.push(el("li", "empty", "Nothing queued for you."));
    emailList.replaceChildren.apply(emailList, items);
  }

  // Why nothing is being sent (no worker, queue paused), said while it lasts.
  function renderNotices(items) {
    var key = JSON.stringify(items);
    if (notices.getAttribute("data-key") === key) return;
    notices.setAttribute("data-key", key);
    notices.replaceChildren.apply(notices, items.map(function (notice) {
      var box = el("div", "notice notice-" + notice.kind);
      box.appendChild(el("p", "notice-title", notice.title));
      var text = el("p");
      notice.parts.forEach(function (part) {
        text.appendChild(part.code ? el("code", "", part.text) : document.createTextNode(part.text));
      });
      box.appendChild(text);
      return box;
    }));
  }

  function renderInbox(messages) {
    // Keep existing links (and keyboard focus on them) when nothing changed.
    var ids = messages.map(function (m) { return String(m.id); }).join(",");
    if (inbox.getAttribute("data-ids") === ids) return;
    inbox.setAttribute("data-ids", ids);
    var items = messages.map(function (message) {
      var li = el("li");
      li.setAttribute("data-id", message.id);
      var link = el("a", "", message.subject);
      link.href = message.url;
      li.appendChild(link);
      var meta = el("span", "meta", "To " + message.to + " · ");
      meta.appendChild(timeNode(message.sent_at));
      li.appendChild(meta);
      return li;
    });
    if (!items.length) items.push(el("li", "empty", "Nothing yet."));
    inbox.replaceChildren.apply(inbox, items);
  }

  function announceChanges(rows) {
    var changes = [];
    rows.forEach(function (row) {
      var before = lastProgress[row.id];
      if (before !== undefined && before !== row.progress) {
        changes.push(row.label + ": " + row.progress_label);
      }
      lastProgress[row.id] = row.progress;
    });
    if (changes.length) announce.textContent = changes.join(". ");
  }

  function nextDelay(data) {
    var soon = Date.now() + 60 * 1000;
    var busy = data.emails.some(function (row) {
      if (row.progress === "sending") return true;
      return row.next_attempt_at && new Date(row.next_attempt_at).getTime() <= soon;
    });
    return busy ? FAST : SLOW;
  }

  function schedule(ms) {
    clearTimeout(timer);
    if (!document.hidden) timer = setTimeout(poll, ms);
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.status === 403) {
          if (note) note.textContent = "Live updates stopped: log in to keep watching.";
          return null;
        }
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        if (!data) return;
        announceChanges(data.emails);
        renderNotices(data.notices);
        renderEmails(data.emails);
        renderInbox(data.messages);
        schedule(nextDelay(data));
      })
      .catch(function () { schedule(SLOW); });
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) clearTimeout(timer);
    else poll();
  });
  poll();
})();
