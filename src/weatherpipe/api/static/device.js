// weatherpipe device page: the device's temperature over a range that fits its data, drawn
// with uPlot (vendored in static/vendor/uplot/): zoom by dragging, a legend, local time or
// UTC, anomaly marks coloured by severity whose tooltip says kind, severity and score.
(function () {
  "use strict";
  var SPANS = { "15m": 900e3, "1h": 3600e3, "6h": 6 * 3600e3, "24h": 86400e3,
    "7d": 7 * 86400e3, "30d": 30 * 86400e3 };
  var REFRESH_MS = 15000;
  var COLORS = { low: "#e0b000", medium: "#f07800", high: "#d62728" };
  var range = "all";
  var chart = null;
  var series = null;
  var marks = [];
  var zoomed = false;
  var shown = null; // the range drawn: {start, end} in ms

  function $(id) { return document.getElementById(id); }

  function utc() { return $("utc").checked; }

  // Raw readings up to an hour, minute rollups up to 3 days, hours beyond: every chart a few
  // thousand points at most, long ranges from the rollups.
  function resolution(ms) {
    if (ms <= 3600e3) return "raw";
    if (ms <= 3 * 86400e3) return "minute";
    if (ms <= 400 * 86400e3) return "hour";
    return "day";
  }

  // The range's start never precedes the device's first reading, so a fresh device fills the
  // chart instead of a sliver at its edge.
  function window_() {
    var device = $("device").dataset;
    var end = Date.now();
    var first = device.firstSeen ? Date.parse(device.firstSeen) : end - 3600e3;
    var start = range === "all" ? first : Math.max(end - SPANS[range], first);
    if (end - start < 60e3) start = end - 60e3;
    return { start: start, end: end };
  }

  function when(seconds) {
    var d = new Date(seconds * 1000);
    if (utc()) return d.toISOString().replace("T", " ").slice(0, 19) + " UTC";
    var pad = function (n) { return String(n).padStart(2, "0"); };
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + " local";
  }

  function describe(mark) {
    var what = (mark.kind || "unlabelled") + (mark.severity ? " (" + mark.severity + ")" : "");
    var score = mark.anomaly_score === null ? "no score" : "score " + mark.anomaly_score.toFixed(2);
    var text = what + " · " + score + " · " + mark.temperature.toFixed(2) + " °C · " +
      when(Date.parse(mark.ts) / 1000);
    if (mark.count > 1) {
      text = mark.count + " flagged readings in this " + series.resolution + "; worst: " + text;
    }
    return text;
  }

  // uPlot's columns: time, then mean (the line), min and max (the band), then the marks.
  function columns(answer) {
    var xs = answer.points.map(function (p) { return Date.parse(p.ts) / 1000; });
    var at = {};
    xs.forEach(function (x, i) { at[x] = i; });
    var flagged = xs.map(function () { return null; });
    marks = [];
    answer.anomalies.forEach(function (a) {
      var i = at[Date.parse(a.ts) / 1000];
      if (i === undefined) return;
      flagged[i] = a.temperature;
      marks.push({ i: i, a: a });
    });
    return [
      xs,
      answer.points.map(function (p) { return p.t_mean; }),
      answer.points.map(function (p) { return p.t_min; }),
      answer.points.map(function (p) { return p.t_max; }),
      flagged,
    ];
  }

  function drawMarks(u) {
    var ctx = u.ctx;
    ctx.save();
    marks.forEach(function (m) {
      var x = u.valToPos(u.data[0][m.i], "x", true);
      var y = u.valToPos(m.a.temperature, "y", true);
      var r = (m.a.count > 1 ? 6 + Math.min(6, Math.log2(m.a.count) * 1.5) : 5) * devicePixelRatio;
      ctx.beginPath();
      ctx.arc(x, y, r, 0, 2 * Math.PI);
      ctx.fillStyle = COLORS[m.a.severity] || "#888";
      ctx.strokeStyle = "#fff";
      ctx.lineWidth = devicePixelRatio;
      ctx.fill();
      ctx.stroke();
    });
    ctx.restore();
  }

  // The tooltip of the mark nearest the cursor, within 10 pixels.
  function tooltip(u) {
    var tip = $("tooltip");
    var left = u.cursor.left, top = u.cursor.top;
    var best = null, bestDistance = 10;
    marks.forEach(function (m) {
      var dx = u.valToPos(u.data[0][m.i], "x") - left;
      var dy = u.valToPos(m.a.temperature, "y") - top;
      var distance = Math.sqrt(dx * dx + dy * dy);
      if (left >= 0 && distance <= bestDistance) { best = m; bestDistance = distance; }
    });
    if (!best) { tip.hidden = true; return; }
    tip.textContent = describe(best.a);
    tip.dataset.kind = best.a.kind || "";
    var box = u.over.getBoundingClientRect();
    tip.style.left = (window.scrollX + box.left + left + 12) + "px";
    tip.style.top = (window.scrollY + box.top + top + 12) + "px";
    tip.hidden = false;
  }

  function options(answer, span) {
    var raw = answer.resolution === "raw";
    var box = $("chart");
    return {
      width: Math.max(320, box.clientWidth),
      height: 360,
      tzDate: utc() ? function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); }
        : function (ts) { return new Date(ts * 1e3); },
      scales: {
        x: { time: true },
        // Room above and below, so a mark at the highest or lowest reading is drawn whole.
        y: { range: function (u, min, max) {
          var pad = Math.max(0.5, (max - min) * 0.08);
          return [min - pad, max + pad];
        } },
      },
      series: [
        { label: utc() ? "time (UTC)" : "time (local)", value: function (u, v) { return v === null ? "-" : when(v); } },
        { label: raw ? "temperature °C" : "mean °C", stroke: "#1f6fbf", width: 1.5,
          points: { show: answer.points.length < 120 }, value: fixed },
        { label: "min °C", stroke: "#9cc3ea", width: 1, show: !raw, value: fixed },
        { label: "max °C", stroke: "#9cc3ea", width: 1, show: !raw, value: fixed },
        { label: "anomalies", stroke: "#d62728", paths: function () { return null; },
          points: { show: false }, value: fixed },
      ],
      bands: raw ? [] : [{ series: [3, 2], fill: "rgba(31,111,191,0.12)" }],
      axes: [{}, { label: "°C" }],
      cursor: { drag: { x: true, y: false } },
      hooks: {
        draw: [drawMarks],
        setCursor: [tooltip],
        // A drag across the plot selects, then zooms to the selection.
        setSelect: [function (u) {
          if (u.select.width > 0) { zoomed = true; box.dataset.zoomed = "true"; }
        }],
      },
    };
  }

  function fixed(u, v) { return v === null || v === undefined ? "-" : v.toFixed(2); }

  function draw(answer, span) {
    var box = $("chart");
    series = answer;
    if (chart) chart.destroy();
    zoomed = false;
    box.dataset.zoomed = "false";
    $("chart-note").textContent = answer.points.length ? "" : "No data found in this range";
    shown = span;
    chart = new uPlot(options(answer, span), columns(answer), box);
    chart.setScale("x", { min: span.start / 1000, max: span.end / 1000 });
    window.weatherpipeChart = chart;
    box.dataset.points = String(answer.points.length);
    box.dataset.marks = String(marks.length);
    box.dataset.resolution = answer.resolution;
    box.dataset.start = new Date(span.start).toISOString();
    box.dataset.end = new Date(span.end).toISOString();
    box.dataset.tz = utc() ? "UTC" : "local";
    document.body.dataset.chart = "drawn";
  }

  function load() {
    var span = window_();
    var url = "/api/v1/series?device_id=" + encodeURIComponent($("device").dataset.deviceId) +
      "&start=" + new Date(span.start).toISOString() + "&end=" + new Date(span.end).toISOString() +
      "&resolution=" + resolution(span.end - span.start);
    return fetch(url, { headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) throw new Error("the series answered " + r.status);
        return r.json();
      })
      .then(function (answer) {
        draw(answer, span);
        $("updated").textContent = "updated " + when(Date.now() / 1000);
      })
      .catch(function (err) { $("chart-note").textContent = "chart failed: " + err.message; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelector(".ranges").addEventListener("click", function (event) {
      var button = event.target.closest("button[data-range]");
      if (!button) return;
      range = button.dataset.range;
      document.querySelectorAll("button[data-range]").forEach(function (b) {
        b.setAttribute("aria-pressed", String(b === button));
      });
      load();
    });
    $("utc").addEventListener("change", function () { if (series) draw(series, shown); });
    $("reset-zoom").addEventListener("click", function () { if (series) load(); });
    $("chart").addEventListener("dblclick", function () {
      zoomed = false;
      $("chart").dataset.zoomed = "false";
    });
    $("chart").addEventListener("mouseleave", function () { $("tooltip").hidden = true; });
    window.addEventListener("resize", function () {
      if (chart) chart.setSize({ width: Math.max(320, $("chart").clientWidth), height: 360 });
    });
    load();
    // A still chart of a live device refreshes itself (one request for this one device).
    setInterval(function () {
      if (!zoomed && document.visibilityState === "visible") load();
    }, REFRESH_MS);
  });
})();
