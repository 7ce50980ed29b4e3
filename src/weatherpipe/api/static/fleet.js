// weatherpipe fleet overview: one server-sent-event stream keeps the page live. Each event
// carries the whole page (devices, fleet totals, pipeline health), so the page never asks per
// device; searching, sorting and paging open a new stream, whose first event answers at once.
(function () {
  "use strict";
  var stream = null;
  var received = 0;

  function params() {
    var form = document.getElementById("fleet-form");
    var table = document.getElementById("fleet");
    var own = new URLSearchParams(window.location.search);
    var p = new URLSearchParams();
    p.set("q", form.q.value.trim());
    p.set("sort", form.sort.value);
    p.set("order", form.order.value);
    p.set("per_page", form.per_page.value);
    p.set("page", table.dataset.page || "1");
    if (own.get("every")) p.set("every", own.get("every"));
    return p;
  }

  function cell(iso) {
    return iso ? iso.replace("T", " ").slice(0, 19) + " UTC" : "-";
  }

  // A duration as people read it: 45 s, 12 min, 3 h, 2 d (dashboard.py's `span` twin).
  function span(seconds) {
    if (seconds === null || seconds === undefined) return "never sent";
    var units = [["d", 86400], ["h", 3600], ["min", 60]];
    for (var i = 0; i < units.length; i++) {
      if (seconds >= units[i][1]) return Math.floor(seconds / units[i][1]) + " " + units[i][0];
    }
    return Math.floor(seconds) + " s";
  }

  function flag(worst) {
    if (!worst) return "-";
    var text = worst.kind || "unlabelled";
    if (worst.severity) text += " (" + worst.severity + ")";
    if (worst.score !== null) text += " " + worst.score.toFixed(2);
    return text;
  }

  function number(n) { return Number(n).toLocaleString("en"); }

  function td(tr, className, text) {
    var el = document.createElement("td");
    el.className = className;
    el.textContent = text;
    tr.appendChild(el);
    return el;
  }

  // One device's row (the `device_row` macro's twin).
  function row(d) {
    var tr = document.createElement("tr");
    tr.dataset.deviceId = d.device_id;
    var name = td(tr, "name", "");
    var link = document.createElement("a");
    link.href = "/devices/" + encodeURIComponent(d.device_id);
    link.textContent = d.name || d.device_id;
    var id = document.createElement("code");
    id.className = "id";
    id.textContent = d.device_id;
    name.append(link, document.createElement("br"), id);
    td(tr, "place", d.latitude === null ? "-" :
      d.latitude.toFixed(3) + ", " + d.longitude.toFixed(3));
    td(tr, "last num", d.last_temperature === null ? "-" : d.last_temperature.toFixed(2) + " °C");
    td(tr, "seen", cell(d.last_seen));
    td(tr, "silence num", span(d.silence_seconds));
    td(tr, "a30 num", String(d.anomalies_30m));
    td(tr, "a24 num", String(d.anomalies_24h));
    var worst = td(tr, "worst", flag(d.worst_24h));
    if (d.worst_24h && d.worst_24h.severity) worst.classList.add("sev-" + d.worst_24h.severity);
    td(tr, "detection", d.detection.replace("_", " "));
    return tr;
  }

  function fill(field, text) {
    var el = document.querySelector('#health [data-field="' + field + '"]');
    if (el) el.textContent = text;
  }

  // The health strip (the `health_strip` macro's twin).
  function strip(h, t) {
    fill("ingest_rate", h.ingest_rate === null ? "measuring…" : h.ingest_rate.toFixed(1) + " readings/s");
    fill("stored", number(h.stored));
    fill("lag", h.lag === null ? "unknown" : number(h.lag) + " messages");
    var lag = document.querySelector('#health [data-field="lag"]');
    if (lag) lag.title = h.lag_note;
    fill("dead_letters", number(h.dead_letters) + " (" + number(h.dead_letters_pending) + " pending)");
    var det = h.detection;
    fill("detection", det.position ? "at " + cell(det.position) + ", " + span(det.behind_seconds) + " behind" : "not started");
    fill("warming_up", det.warming_up + " devices");
    fill("devices", number(t.devices) + ": " + number(t.reporting) + " reporting, " +
      number(t.silent) + " silent, " + number(t.never_seen) + " never sent");
    fill("anomalies", number(t.anomalies_30m) + " in 30 min on " + number(t.anomalous_30m) +
      " devices · " + number(t.anomalies_24h) + " in 24 h");
  }

  function pager(answer) {
    var table = document.getElementById("fleet");
    table.dataset.page = answer.page;
    table.dataset.pages = answer.pages;
    document.getElementById("page-note").textContent =
      "page " + answer.page + " of " + answer.pages + " · " + number(answer.total) + " devices";
    var prev = document.querySelector('#pager a[rel="prev"]');
    var next = document.querySelector('#pager a[rel="next"]');
    prev.dataset.page = answer.page - 1;
    next.dataset.page = answer.page + 1;
    prev.setAttribute("aria-disabled", String(answer.page <= 1));
    next.setAttribute("aria-disabled", String(answer.page >= answer.pages));
  }

  function render(answer) {
    var body = document.querySelector("#fleet tbody");
    var rows = answer.devices.map(row);
    if (!rows.length) {
      var tr = document.createElement("tr");
      tr.className = "empty";
      td(tr, "", "No data found").colSpan = 9;
      rows.push(tr);
    }
    body.replaceChildren.apply(body, rows);
    strip(answer.health, answer.fleet);
    pager(answer);
    received += 1;
    document.body.dataset.events = String(received);
    document.getElementById("updated").textContent =
      "live · updated " + answer.generated_at.slice(11, 19) + " UTC";
  }

  function open() {
    if (stream) stream.close();
    var p = params();
    var address = new URL(window.location.href);
    address.search = p.toString();
    address.searchParams.delete("every");
    if (new URLSearchParams(window.location.search).get("every")) {
      address.searchParams.set("every", p.get("every"));
    }
    window.history.replaceState(null, "", address);
    stream = new EventSource("/api/v1/events?" + p.toString());
    stream.addEventListener("fleet", function (event) { render(JSON.parse(event.data)); });
    stream.onerror = function () {
      document.getElementById("updated").textContent = "connection lost · reconnecting…";
    };
  }

  function goTo(page) {
    document.getElementById("fleet").dataset.page = String(page);
    open();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("fleet-form");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      goTo(1);
    });
    form.sort.addEventListener("change", function () { goTo(1); });
    form.order.addEventListener("change", function () { goTo(1); });
    document.getElementById("pager").addEventListener("click", function (event) {
      var link = event.target.closest("a[data-page]");
      if (!link) return;
      event.preventDefault();
      if (link.getAttribute("aria-disabled") === "true") return;
      goTo(Number(link.dataset.page));
    });
    open();
  });
})();
