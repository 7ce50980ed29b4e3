// weatherpipe dashboard: draws each device's temperature as an SVG chart with its anomalies
// marked, and refreshes the cards, charts and tables every few seconds. No libraries, no CDN.
(function () {
  "use strict";
  var SPANS = { "1h": 3600e3, "24h": 86400e3, "7d": 7 * 86400e3, "30d": 30 * 86400e3 };
  var POLL_MS = 5000;
  var W = 360, H = 150, PAD = { l: 40, r: 6, t: 8, b: 20 };
  var NS = "http://www.w3.org/2000/svg";
  var range = "1h";
  var names = {};

  function node(name, attrs, parent) {
    var n = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { n.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(n);
    return n;
  }

  function getJSON(url) {
    return fetch(url, { headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) throw new Error(url.split("?")[0] + " answered " + r.status);
      return r.json();
    });
  }

  function fmtTime(ms, span) {
    var d = new Date(ms).toISOString();
    return span > 2 * 86400e3 ? d.slice(5, 10) : d.slice(11, 16) + " UTC";
  }

  function draw(svg, series) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var t0 = Date.parse(series.start), t1 = Date.parse(series.end);
    var pts = series.points, marks = series.anomalies;
    var temps = [];
    pts.forEach(function (p) { temps.push(p.t_min, p.t_max); });
    marks.forEach(function (a) { temps.push(a.temperature); });
    if (!temps.length) {
      node("text", { x: W / 2, y: H / 2, "text-anchor": "middle", "class": "axis" }, svg)
        .textContent = "No data found in this range";
      svg.setAttribute("data-points", "0");
      return;
    }
    var lo = Math.min.apply(null, temps), hi = Math.max.apply(null, temps);
    if (hi - lo < 1) { lo -= 0.5; hi += 0.5; }
    var x = function (ms) { return PAD.l + ((ms - t0) / (t1 - t0)) * (W - PAD.l - PAD.r); };
    var y = function (t) { return PAD.t + ((hi - t) / (hi - lo)) * (H - PAD.t - PAD.b); };
    [lo, (lo + hi) / 2, hi].forEach(function (t) {
      node("line", { x1: PAD.l, x2: W - PAD.r, y1: y(t), y2: y(t), "class": "grid" }, svg);
      node("text", { x: PAD.l - 4, y: y(t) + 4, "text-anchor": "end", "class": "axis" }, svg)
        .textContent = t.toFixed(1) + "°";
    });
    node("text", { x: PAD.l, y: H - 6, "class": "axis" }, svg).textContent =
      fmtTime(t0, t1 - t0);
    node("text", { x: W - PAD.r, y: H - 6, "text-anchor": "end", "class": "axis" }, svg)
      .textContent = fmtTime(t1, t1 - t0);
    var xs = pts.map(function (p) { return x(Date.parse(p.ts)); });
    if (series.resolution !== "raw" && pts.length) {
      var upper = pts.map(function (p, i) { return xs[i] + "," + y(p.t_max); });
      var lower = pts.map(function (p, i) { return xs[i] + "," + y(p.t_min); }).reverse();
      node("polygon", { points: upper.concat(lower).join(" "), "class": "band" }, svg);
    }
    node("polyline", {
      points: pts.map(function (p, i) { return xs[i] + "," + y(p.t_mean); }).join(" "),
      "class": "line",
    }, svg);
    marks.forEach(function (a) {
      var c = node("circle", {
        cx: x(Date.parse(a.ts)), cy: y(a.temperature), r: 4.5, "class": "anomaly",
      }, svg);
      if (a.kind) { c.setAttribute("data-kind", a.kind); c.setAttribute("data-severity", a.severity); }
      node("title", {}, c).textContent = (a.kind ? a.kind + " (" + a.severity + ")" : "anomaly") +
        " " + a.temperature.toFixed(2) + " °C at " + a.ts + " (" + a.detector + ")";
    });
    svg.setAttribute("data-points", String(pts.length));
    svg.setAttribute("data-resolution", series.resolution);
  }

  function refreshCharts() {
    var end = Date.now(), start = end - SPANS[range];
    var cards = Array.prototype.slice.call(document.querySelectorAll(".device"));
    return Promise.all(cards.map(function (card) {
      var url = "/api/v1/series?device_id=" + encodeURIComponent(card.dataset.deviceId) +
        "&start=" + new Date(start).toISOString() + "&end=" + new Date(end).toISOString();
      return getJSON(url).then(function (series) {
        var note = card.querySelector(".chart-note");
        if (note) note.textContent = "";
        draw(card.querySelector("svg"), series);
      });
    }));
  }

  function fmt(v) { return v === null || v === undefined ? "-" : Number(v).toFixed(2); }

  function refreshCards() {
    return getJSON("/api/v1/devices").then(function (devices) {
      devices.forEach(function (d) {
        names[d.device_id] = d.name || d.device_id.slice(0, 8);
        var card = document.querySelector('.device[data-device-id="' + d.device_id + '"]');
        if (!card) return;
        card.querySelector(".last").textContent = d.last_ts
          ? fmt(d.last_temperature) + " °C at " + d.last_ts.replace("T", " ").slice(0, 19) + " UTC"
          : "-";
        card.querySelector(".count").textContent = d.count.toLocaleString("en");
        card.querySelector(".max").textContent = fmt(d.max_temperature) + " °C";
        card.querySelector(".detection").textContent = d.detection.replace("_", " ");
      });
    });
  }

  // What flagged readings say they are, most frequent first: "spike (high) x2, dip (low)".
  function kinds(readings) {
    var counts = {}, order = [];
    readings.forEach(function (r) {
      var label = r.kind ? r.kind + " (" + r.severity + ")" : "unlabelled";
      if (!(label in counts)) { counts[label] = 0; order.push(label); }
      counts[label] += 1;
    });
    order.sort(function (a, b) { return counts[b] - counts[a]; });
    return order.map(function (l) { return counts[l] > 1 ? l + " x" + counts[l] : l; })
      .join(", ") || "-";
  }

  function fillTable(id, rows, value) {
    var body = document.querySelector("#" + id + " tbody");
    if (!body) return;
    body.textContent = "";
    rows.forEach(function (row) {
      var tr = document.createElement("tr");
      [names[row.device_id] || row.device_id].concat(value(row)).forEach(function (text) {
        var td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    if (!rows.length) {
      var tr = document.createElement("tr"), td = document.createElement("td");
      td.colSpan = body.parentNode.querySelectorAll("th").length; td.textContent = "No data found"; tr.appendChild(td); body.appendChild(tr);
    }
  }

  function refreshTables() {
    return Promise.all([
      getJSON("/api/v1/stats/counts").then(function (rows) {
        fillTable("counts", rows, function (r) { return String(r.count); });
      }),
      getJSON("/api/v1/stats/max-temperature").then(function (rows) {
        fillTable("max", rows, function (r) { return fmt(r.max_temperature); });
      }),
      getJSON("/api/v1/anomalies?minutes=30").then(function (rows) {
        fillTable("anomalies", rows, function (r) { return [String(r.count), kinds(r.readings)]; });
      }),
    ]);
  }

  function tick() {
    var status = document.getElementById("updated");
    return refreshCards()
      .then(function () { return Promise.all([refreshCharts(), refreshTables()]); })
      .then(function () {
        status.textContent = "live · updated " + new Date().toISOString().slice(11, 19) + " UTC";
        document.body.setAttribute("data-charts", "drawn");
      })
      .catch(function (err) { status.textContent = "update failed: " + err.message; });
  }

  function chooseRange(event) {
    var button = event.target.closest("button[data-range]");
    if (!button) return;
    range = button.dataset.range;
    document.querySelectorAll("button[data-range]").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b === button));
    });
    refreshCharts();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var nav = document.querySelector(".ranges");
    if (nav) nav.addEventListener("click", chooseRange);
    tick();
    setInterval(tick, POLL_MS);
  });
})();
