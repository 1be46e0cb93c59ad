/*
 * genpulse dashboard: renders the API's JSON with plotly.js and keeps it live.
 *
 * The token the user signs in with is kept in sessionStorage and sent as an Authorization
 * header (never in a URL). Live updates read /v1/stream with fetch (EventSource cannot send
 * headers) and re-fetch the views when the worker publishes a snapshot. Every chart has an
 * empty state ("no data yet") and the page has an error state when the API or Redis is down;
 * both clear by themselves when data flows again.
 *
 * The filter bar slices every metric (service, environment, model, tier, user, tag) and the
 * "group by" switch turns the time series into one line per value plus a table of groups.
 * The view (range, filters, group-by) lives in the URL's hash, so a shared link restores it
 * (the token never does: the recipient signs in with their own).
 */
(function () {
  "use strict";

  var TOKEN_KEY = "genpulse.token";
  var STEPS = {"5m": "1m", "1h": "1m", "24h": "15m", "7d": "2h"};
  var BUDGET_BANDS = [[0, 50, "#1f6f4a"], [50, 80, "#8a6d1a"], [80, 90, "#9a4a20"], [90, 100, "#8f2226"]];
  var COLORS = ["#5b8cff", "#2bb673", "#f5a623", "#e5484d", "#a46bff", "#19c2c9", "#f2743b"];
  var PHASES = ["extraction", "analysis", "synthesis", "enhancement"];
  var MARKS = [
    ["time_to_first_byte", "First byte"], ["time_to_first_content", "First content"],
    ["time_to_interactive", "Interactive"], ["time_to_complete", "Complete"]
  ];

  var FILTERS = ["service", "environment", "model", "tier", "user", "tag"];
  var SUGGESTED = ["service", "environment", "model", "tier"];  // values offered from group_by answers
  var MAX_SERIES = 10;  // lines per grouped chart; the groups table lists them all
  // What the worker keeps per user and per tag value (docs/api.md, Slicing): other series
  // are not asked for in such a view, their charts say so.
  var COMPACT_SERIES = ["events", "generations", "requests_per_second", "error_rate", "cost_nanousd"];

  var state = {range: "1h", token: sessionStorage.getItem(TOKEN_KEY), loading: false,
               again: false, stream: null, lastOk: 0, filters: {}, groupBy: ""};
  var $ = function (id) { return document.getElementById(id); };

  // ---------------------------------------------------------------- API access ----------
  function ApiError(status, message, code) { this.status = status; this.message = message; this.code = code; }

  function api(path) {
    return fetch(path, {headers: {Authorization: "Bearer " + state.token}}).then(
      function (response) {
        if (response.ok) return response.json();
        return response.json().catch(function () { return {}; }).then(function (body) {
          throw new ApiError(response.status, body.message || body.detail || response.statusText, body.error);
        });
      },
      function () { throw new ApiError(0, "the API is unreachable"); }
    );
  }

  function query(extra) {
    var q = "window=" + encodeURIComponent(state.range);
    return extra ? q + "&" + extra : q;
  }

  function filterQuery() {
    return FILTERS.filter(function (f) { return state.filters[f]; }).map(function (f) {
      return f + "=" + encodeURIComponent(state.filters[f]);
    }).join("&");
  }

  // The range and the filters: what every sliced route takes.
  function sliced(extra) {
    return query([filterQuery(), extra || ""].filter(Boolean).join("&"));
  }

  // ... and the group-by, for the routes whose grouped answer the page shows.
  function grouped(extra) {
    return sliced([state.groupBy ? "group_by=" + encodeURIComponent(state.groupBy) : "", extra || ""]
                  .filter(Boolean).join("&"));
  }

  // ---------------------------------------------------------------- the view in the URL -
  function readHash() {
    var params = new URLSearchParams(location.hash.replace(/^#/, ""));
    var range = params.get("window");
    state.range = STEPS[range] ? range : "1h";
    state.filters = {};
    FILTERS.forEach(function (f) { if (params.get(f)) state.filters[f] = params.get(f); });
    state.groupBy = params.get("group_by") || "";
    showView();
  }

  function writeHash() {
    var params = new URLSearchParams();
    params.set("window", state.range);
    FILTERS.forEach(function (f) { if (state.filters[f]) params.set(f, state.filters[f]); });
    if (state.groupBy) params.set("group_by", state.groupBy);
    history.replaceState(null, "", "#" + params.toString());
  }

  function showView() {  // the controls show the state (after a shared URL or a change)
    document.querySelectorAll(".ranges button").forEach(function (x) {
      x.classList.toggle("active", x.dataset.range === state.range);
    });
    FILTERS.forEach(function (f) { $("f-" + f).value = state.filters[f] || ""; });
    var tag = /^tag:/.test(state.groupBy);
    $("f-group").value = tag ? "tag" : state.groupBy;
    $("f-group-tag").value = tag ? state.groupBy.slice(4) : "";
    $("f-group-tag").hidden = !tag;
    $("groups-section").hidden = !state.groupBy;
    document.body.dataset.view = location.hash.replace(/^#/, "");
  }

  function applyControls() {
    state.filters = {};
    FILTERS.forEach(function (f) { var v = $("f-" + f).value.trim(); if (v) state.filters[f] = v; });
    var group = $("f-group").value;
    $("f-group-tag").hidden = group !== "tag";
    var key = $("f-group-tag").value.trim();
    state.groupBy = group === "tag" ? (key ? "tag:" + key : "") : group;
    writeHash();
    showView();
    load();
  }

  // Values seen for the filters: the groups of a group_by answer for each dimension.
  function suggest() {
    SUGGESTED.forEach(function (dim) {
      api("/v1/metrics/summary?" + query("group_by=" + dim)).then(function (answer) {
        $("dl-" + dim).innerHTML = answer.groups.filter(function (g) { return g.value !== "other"; }).map(function (g) {
          return '<option value="' + esc(g.value) + '">';
        }).join("");
      }, function () {});
    });
  }

  // A user= or tag= slice answers compact figures (docs/api.md): the rest is null. The
  // renderers read nested figures, so those get empty stand-ins.
  var NESTED = {
    performance: {phases: {}, cache_hits: 0, cache_misses: 0},
    costs: {by_model: []},
    quality: {distribution: {excellent: 0, good: 0, fair: 0, poor: 0}},
    health: {circuit_breakers: [], retries: {attempted: 0, failed: 0}, active_requests: 0}
  };

  function filled(view, answer) {
    if (!answer) return answer;
    var stand = NESTED[view];
    for (var k in stand) if (answer[k] == null) answer[k] = stand[k];
    return answer;
  }

  // ---------------------------------------------------------------- formatting ----------
  function fmtInt(n) { return n == null ? "–" : Math.round(n).toLocaleString("en-US"); }
  function fmtPct(r) { return r == null ? "–" : (100 * r).toFixed(1) + "%"; }
  function fmtMs(ms) {
    if (ms == null) return "–";
    return ms >= 1000 ? (ms / 1000).toFixed(2) + " s" : Math.round(ms) + " ms";
  }
  function fmtUsd(s) {
    if (s == null) return "–";
    var n = Number(s);
    return "$" + (n >= 100 ? n.toFixed(0) : n >= 1 ? n.toFixed(2) : n.toFixed(4));
  }
  function fmtTime(ms) { return new Date(ms).toLocaleTimeString(); }
  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }

  // ---------------------------------------------------------------- charts --------------
  var LAYOUT = {
    margin: {l: 48, r: 12, t: 8, b: 32}, paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)", font: {color: "#c9cfdd", size: 11},
    xaxis: {gridcolor: "#263049"}, yaxis: {gridcolor: "#263049", rangemode: "tozero"},
    legend: {orientation: "h", y: -0.2}, showlegend: true
  };
  var CONFIG = {displayModeBar: false, responsive: true};

  function layout(extra) {
    var out = JSON.parse(JSON.stringify(LAYOUT));
    for (var k in extra || {}) out[k] = extra[k];
    return out;
  }

  function empty(id, text) {
    var el = $(id);
    if (el.data) Plotly.purge(el);
    el.innerHTML = '<div class="empty">' + esc(text || "no data yet") + "</div>";
    el.dataset.state = "empty";
  }

  function plot(id, traces, extra) {
    var el = $(id);
    if (el.dataset.state !== "chart") { el.innerHTML = ""; el.dataset.state = "chart"; }
    Plotly.react(el, traces, layout(extra), CONFIG);
  }

  function hasValues(points) {
    return points.some(function (p) { return p.value != null && p.value !== 0; });
  }

  function line(points, name, scale, i) {
    return {
      x: points.map(function (p) { return new Date(p.time_ms); }),
      y: points.map(function (p) { return p.value == null ? null : p.value * (scale || 1); }),
      name: name, type: "scatter", mode: "lines", connectgaps: false,
      line: {color: COLORS[i || 0], width: 2}
    };
  }

  // A timeseries answer as named series: one per group when grouped, else one.
  function asSeries(answer, name) {
    if (answer.length && answer[0].points) {
      return answer.slice(0, MAX_SERIES).map(function (g) { return {name: g.value, points: g.points}; });
    }
    return [{name: name, points: answer}];
  }

  function lines(answer, name, scale, first) {  // a group keeps its colour in every chart
    var series = asSeries(answer, name);
    return series.map(function (s, i) {
      return line(s.points, s.name, scale, series.length > 1 || state.groupBy ? i % COLORS.length : first);
    });
  }

  function anyValues(answer, test) {
    return asSeries(answer, "").some(function (s) { return (test || hasValues)(s.points); });
  }

  function table(id, columns, rows, emptyText) {
    var el = $(id);
    if (!rows.length) { el.innerHTML = '<div class="empty">' + esc(emptyText) + "</div>"; return; }
    var head = "<tr>" + columns.map(function (c) { return "<th>" + esc(c[0]) + "</th>"; }).join("") + "</tr>";
    var body = rows.map(function (r) {
      return "<tr>" + columns.map(function (c) { return "<td>" + c[1](r) + "</td>"; }).join("") + "</tr>";
    }).join("");
    el.innerHTML = "<table>" + head + body + "</table>";
  }

  // ---------------------------------------------------------------- sections ------------
  function card(id, raw, text) {
    var el = $(id);
    el.textContent = text;
    el.dataset.value = raw == null ? "" : String(raw);  // the API's own value, for tests and tooltips
    el.title = el.dataset.value;
  }

  function renderOverview(s) {
    card("card-total-generations", s.total_generations, fmtInt(s.total_generations));
    card("card-success-rate", s.success_rate, fmtPct(s.success_rate));
    card("card-avg-duration", s.average_duration_ms, fmtMs(s.average_duration_ms));
    card("card-cost-per-user", s.cost_per_user_usd, fmtUsd(s.cost_per_user_usd));
  }

  function renderPerformance(perf, series) {
    if (anyValues(series.p50) || anyValues(series.p95)) {  // grouped: the p95 of each group
      var traces = state.groupBy ? lines(series.p95, "p95", 1e-3, 0)
        : [line(series.p50, "p50", 1e-3, 0), line(series.p95, "p95", 1e-3, 2)];
      plot("chart-duration", traces, {yaxis: {title: "seconds", gridcolor: "#263049", rangemode: "tozero"}});
    } else empty("chart-duration");

    var counted = PHASES.some(function (ph) { return perf.phases[ph] && perf.phases[ph].count; });
    if (counted) {
      plot("chart-phases", ["p50", "p95", "p99"].map(function (q, i) {
        return {x: PHASES, y: PHASES.map(function (ph) { return perf.phases[ph][q + "_duration_ms"]; }),
                name: q, type: "bar", marker: {color: COLORS[i]}};
      }), {barmode: "group", yaxis: {title: "ms", gridcolor: "#263049"}});
    } else empty("chart-phases");

    if (anyValues(series.cache)) {
      plot("chart-cache", lines(series.cache, "hit rate %", 100, 1),
           {yaxis: {range: [0, 100], gridcolor: "#263049", title: "%"}});
    } else empty("chart-cache", perf.cache_hits + perf.cache_misses ? "no hits yet" : "no data yet");

    var marks = MARKS.filter(function (m) { return perf[m[0]] && perf[m[0]].count; });
    if (marks.length) {
      plot("chart-marks", [
        {x: marks.map(function (m) { return m[1]; }), y: marks.map(function (m) { return perf[m[0]].p95_ms; }),
         name: "p95", type: "bar", marker: {color: COLORS[0]},
         text: marks.map(function (m) { return fmtPct(perf[m[0]].within_target_rate) + " within"; }),
         textposition: "auto"},
        {x: marks.map(function (m) { return m[1]; }), y: marks.map(function (m) { return perf[m[0]].target_ms; }),
         name: "target", type: "scatter", mode: "markers", marker: {color: COLORS[3], symbol: "line-ew-open", size: 40, line: {width: 3}}}
      ], {yaxis: {title: "ms", type: "log", gridcolor: "#263049"}});
    } else empty("chart-marks");

    var st = perf.streams;
    if (st && (st.started || st.completed)) {
      plot("chart-streams", [
        {x: ["duration", "first chunk"], y: [st.duration.p50_duration_ms, st.time_to_first_chunk.p50_ms],
         name: "p50", type: "bar", marker: {color: COLORS[0]}},
        {x: ["duration", "first chunk"], y: [st.duration.p95_duration_ms, st.time_to_first_chunk.p95_ms],
         name: "p95", type: "bar", marker: {color: COLORS[1]}},
        {x: ["duration", "first chunk"], y: [st.duration.p99_duration_ms, st.time_to_first_chunk.p99_ms],
         name: "p99", type: "bar", marker: {color: COLORS[2]}}
      ], {barmode: "group", yaxis: {title: "ms", gridcolor: "#263049"}, margin: {l: 48, r: 12, t: 36, b: 32},
          title: {text: fmtInt(st.started) + " started · " + fmtInt(st.completed) + " completed · " +
                  fmtInt(st.in_flight) + " in flight", font: {size: 12}}});
    } else empty("chart-streams");
  }

  function forecastLine(b) {  // the budget's forecast (docs/metrics.md): projected at period end
    var f = b.forecast;
    if (!f) return "";
    return "<br>forecast " + fmtUsd(f.projected_spend_usd) + " by " + (b.period_end_ms ? "period end" : "window") +
      (f.projected_full_ms ? " · 100 % at " + new Date(f.projected_full_ms).toLocaleString() : "") +
      (f.alert ? " · over budget" : "");
  }

  function renderCosts(costs, budgets, daily, users) {  // users: /v1/top/users?by=cost&limit=10
    var today = daily.length ? daily[daily.length - 1] : null;
    if (users.length) {
      plot("chart-cost-monitor", [{
        y: users.map(function (u) { return u.user; }).reverse(),
        x: users.map(function (u) { return Number(u.cost_usd); }).reverse(),
        type: "bar", orientation: "h", name: "top users ($)", marker: {color: COLORS[0]}
      }], {margin: {l: 90, r: 12, t: 28, b: 28}, showlegend: false,
           title: {text: "today " + fmtUsd(today && today.total_cost_usd) + " · range " +
                   fmtUsd(costs.total_cost_usd), font: {size: 12}}});
    } else empty("chart-cost-monitor");

    if (costs.by_model.length) {
      plot("chart-models", [
        {x: costs.by_model.map(function (m) { return m.model; }),
         y: costs.by_model.map(function (m) { return m.calls; }), name: "calls", type: "bar",
         offsetgroup: 1, marker: {color: COLORS[1]}},
        {x: costs.by_model.map(function (m) { return m.model; }),
         y: costs.by_model.map(function (m) { return Number(m.cost_usd); }), name: "cost ($)",
         type: "bar", yaxis: "y2", offsetgroup: 2, marker: {color: COLORS[2]}}
      ], {barmode: "group", yaxis: {title: "calls", gridcolor: "#263049"},
          yaxis2: {title: "$", overlaying: "y", side: "right", showgrid: false, rangemode: "tozero"}});
    } else empty("chart-models");

    var tiers = ["haiku", "sonnet", "opus"];
    if (tiers.some(function (t) { return costs[t + "_calls"]; })) {
      plot("chart-tiers", [
        {x: tiers, y: tiers.map(function (t) { return costs[t + "_calls"]; }), name: "calls", type: "bar",
         offsetgroup: 1, marker: {color: COLORS[1]}},
        {x: tiers, y: tiers.map(function (t) { return Number(costs[t + "_cost_usd"]); }), name: "cost ($)",
         type: "bar", yaxis: "y2", offsetgroup: 2, marker: {color: COLORS[2]}}
      ], {barmode: "group", yaxis: {title: "calls", gridcolor: "#263049"},
          yaxis2: {title: "$", overlaying: "y", side: "right", showgrid: false, rangemode: "tozero"},
          margin: {l: 48, r: 48, t: 36, b: 32},
          title: {text: "total " + fmtInt(costs.total_calls) + " calls" + (costs.percent_used == null ? "" :
                  " · budget " + costs.percent_used.toFixed(1) + "% used, " + fmtUsd(costs.budget_remaining_usd) +
                  " left"), font: {size: 12}}});
    } else empty("chart-tiers");

    var global = budgets.filter(function (b) { return b.scope === "global"; })[0] || budgets[0];
    if (global) {
      plot("chart-budget", [{
        type: "indicator", mode: "gauge+number", value: global.percent_used,
        number: {suffix: "%", valueformat: ".1f"},
        title: {text: global.scope + " · " + fmtUsd(global.spend_usd) + " of " + fmtUsd(global.budget_usd) +
                " · " + global.state + forecastLine(global), font: {size: 12}},
        gauge: {axis: {range: [0, Math.max(100, global.percent_used || 0)]}, bar: {color: "#e6e9f2"},
                steps: BUDGET_BANDS.map(function (b) { return {range: [b[0], b[1]], color: b[2]}; }),
                threshold: {line: {color: "#e5484d", width: 3}, value: 100}}
      }], {margin: {l: 24, r: 24, t: 60, b: 8}});
    } else empty("chart-budget", "no budget set");

    if (daily.some(function (d) { return d.total_calls; })) {
      plot("chart-daily", [{x: daily.map(function (d) { return d.date; }),
                            y: daily.map(function (d) { return Number(d.total_cost_usd); }),
                            type: "bar", name: "cost ($)", marker: {color: COLORS[0]}}],
           {showlegend: false, xaxis: {type: "category", gridcolor: "#263049"}});
    } else empty("chart-daily");
  }

  function renderQuality(q, series) {
    var dist = q.distribution;
    var scored = dist.excellent + dist.good + dist.fair + dist.poor;
    if (scored) {
      plot("chart-scores", [{labels: ["excellent (90–100)", "good (70–89)", "fair (50–69)", "poor (<50)"],
                             values: [dist.excellent, dist.good, dist.fair, dist.poor], type: "pie",
                             hole: 0.45, marker: {colors: [COLORS[1], COLORS[0], COLORS[2], COLORS[3]]}}]);
    } else empty("chart-scores");

    if (anyValues(series.acceptance) || anyValues(series.edits)) {  // grouped: acceptance per group
      plot("chart-acceptance", state.groupBy ? lines(series.acceptance, "acceptance %", 100, 1)
             : [line(series.acceptance, "acceptance %", 100, 1), line(series.edits, "edit %", 100, 2)],
           {yaxis: {range: [0, 100], title: "%", gridcolor: "#263049"}});
    } else empty("chart-acceptance");

    var kinds = [["uvp_edited", "UVP"], ["transformation_edited", "transformation"],
                 ["benefit_reordered", "benefit reorder"]];
    var byKind = q.edits_by_kind || {};
    if (kinds.some(function (k) { return byKind[k[0]]; })) {
      plot("chart-edits", [{x: kinds.map(function (k) { return k[1]; }),
                            y: kinds.map(function (k) { return byKind[k[0]] || 0; }), type: "bar",
                            marker: {color: COLORS}, name: "edits"}],
           {showlegend: false, title: {text: "edit rate " + fmtPct(q.edit_rate) + " · " +
                                       fmtInt(q.edited_generations) + " generations edited", font: {size: 12}},
            margin: {l: 48, r: 12, t: 28, b: 32}});
    } else empty("chart-edits");

    var outcomes = [["approved as is", q.approved_without_edit], ["approved after edits", q.approved_after_edit],
                    ["regenerated", q.regenerated_generations], ["canceled", q.canceled_generations],
                    ["open", q.open_generations]];
    if (q.generations) {
      plot("chart-outcomes", [{x: outcomes.map(function (o) { return o[0]; }),
                               y: outcomes.map(function (o) { return o[1] || 0; }), type: "bar",
                               marker: {color: COLORS}, name: "generations"}],
           {showlegend: false, margin: {l: 48, r: 12, t: 28, b: 48},
            title: {text: "of " + fmtInt(q.generations) + " · upgraded " + fmtPct(q.upgrade_rate) +
                    " · abandoned " + fmtPct(q.abandonment_rate), font: {size: 12}}});
    } else empty("chart-outcomes");

    var sat = q.satisfaction_distribution || {};
    if (q.nps_count || q.satisfaction_count) {
      plot("chart-ratings", [
        {x: ["1", "2", "3", "4", "5"], y: ["1", "2", "3", "4", "5"].map(function (r) { return sat[r] || 0; }),
         type: "bar", name: "satisfaction", marker: {color: COLORS[1]}},
        {x: ["promoters", "passives", "detractors"], y: [q.nps_promoters, q.nps_passives, q.nps_detractors],
         type: "bar", name: "NPS", xaxis: "x2", yaxis: "y2", marker: {color: COLORS[0]}}
      ], {grid: {rows: 1, columns: 2, pattern: "independent"}, showlegend: false,
          xaxis: {type: "category", title: "satisfaction"}, xaxis2: {type: "category", title: "NPS"},
          yaxis2: {gridcolor: "#263049"}, margin: {l: 36, r: 12, t: 12, b: 48}});
    } else empty("chart-ratings");

    var paths = (q.upgrades_by_path || []).map(function (u) {
      return u.from_tier + " → " + u.to_tier + ": " + fmtInt(u.count);
    }).join(", ");
    table("quality-figures", [["figure", function (r) { return esc(r[0]); }],
                              ["value", function (r) { return esc(r[1]); }]], [
      ["time to approval p50 / p95 / p99", fmtMs(q.median_time_to_approval_ms) + " / " +
        fmtMs(q.p95_time_to_approval_ms) + " / " + fmtMs(q.p99_time_to_approval_ms)],
      ["profiles selected / deselected", fmtInt(q.profile_selections) + " / " + fmtInt(q.profile_deselections)],
      ["net selections per generation", q.net_profile_selections_per_generation == null ? "–" :
        q.net_profile_selections_per_generation.toFixed(2)],
      ["model upgrades", paths || "–"],
      ["rejections", fmtInt(q.rejections)]
    ], "no data");

    if (q.nps_count || q.satisfaction_count) {
      plot("chart-nps", [
        {type: "indicator", mode: "gauge+number", value: q.nps == null ? 0 : q.nps,
         title: {text: "NPS (" + q.nps_count + ")", font: {size: 12}}, domain: {x: [0, 0.46], y: [0, 1]},
         gauge: {axis: {range: [-100, 100]}, bar: {color: COLORS[0]}}},
        {type: "indicator", mode: "gauge+number", value: q.average_satisfaction == null ? 0 : q.average_satisfaction,
         number: {valueformat: ".2f"}, title: {text: "satisfaction (" + q.satisfaction_count + ")", font: {size: 12}},
         domain: {x: [0.54, 1], y: [0, 1]}, gauge: {axis: {range: [1, 5]}, bar: {color: COLORS[1]}}}
      ], {margin: {l: 24, r: 24, t: 30, b: 8}});
    } else empty("chart-nps");
  }

  function renderHealth(h, errors, series) {
    if (anyValues(series.errors, function (pts) { return pts.some(function (p) { return p.value != null; }); })) {
      plot("chart-errors", lines(series.errors, "error rate %", 100, 3),
           {yaxis: {title: "%", rangemode: "tozero", gridcolor: "#263049"}});
    } else empty("chart-errors");

    table("breakers", [
      ["breaker", function (b) { return esc(b.name); }],
      ["state", function (b) { return '<span class="state-' + esc(b.state) + '">' + esc(b.state) + "</span>"; }],
      ["since", function (b) { return esc(fmtTime(b.since_ms)); }]
    ], h.circuit_breakers, "no circuit breakers reported");

    plot("chart-active", [{type: "indicator", mode: "gauge+number", value: h.active_requests,
                           title: {text: "in flight · retries " + fmtInt(h.retries.attempted) +
                                   " · fallbacks " + fmtInt(h.fallbacks), font: {size: 12}},
                           gauge: {axis: {range: [0, Math.max(10, h.active_requests * 2)]},
                                   bar: {color: COLORS[0]}}}],
         {margin: {l: 24, r: 24, t: 40, b: 8}});

    var failed = h.phase_failures_by_phase || {};
    var bars = [["canceled", h.generations_canceled], ["failed", h.generations_failed],
                ["retries failed", h.retries.failed]].concat(
      Object.keys(failed).map(function (ph) { return ["phase " + ph, failed[ph]]; }));
    if (bars.some(function (b) { return b[1]; })) {
      plot("chart-failures", [{x: bars.map(function (b) { return b[0]; }), y: bars.map(function (b) { return b[1] || 0; }),
                               type: "bar", marker: {color: COLORS[3]}, name: "count"}],
           {showlegend: false, margin: {l: 48, r: 12, t: 12, b: 60}});
    } else empty("chart-failures");

    table("recent-errors", [
      ["time", function (e) { return esc(fmtTime(e.time_ms)); }],
      ["type", function (e) { return esc(e.type); }],
      ["message", function (e) { return esc(e.message); }],
      ["session", function (e) { return esc(e.session_id); }]
    ], errors, "no errors");
  }

  // The sinks process's own counts (since it started), not the chosen range's.
  function renderExporters(health) {
    var names = Object.keys(health.sinks).sort(function (a, b) {
      var feedA = /^(feed|poll):/.test(a), feedB = /^(feed|poll):/.test(b);
      return feedA === feedB ? (a < b ? -1 : 1) : feedA ? 1 : -1;
    });
    var rows = names.map(function (name) { var s = health.sinks[name]; s.name = name; return s; });
    $("exporters-note").textContent = health.stale
      ? "· not updated since " + fmtTime(health.updated_ms) + " (is genpulse sinks running?)" : "";
    table("exporters", [
      ["sink", function (s) { return esc(s.name) + (s.stale ? '<span class="stale">stale</span>' : ""); }],
      ["sent", function (s) { return esc(fmtInt(s.sent)); }],
      ["dropped", function (s) { return esc(fmtInt(s.dropped)); }],
      ["failed", function (s) { return esc(fmtInt(s.failed)); }],
      ["queued", function (s) { return esc(fmtInt(s.queued)); }],
      ["last error", function (s) {
        return s.last_error ? esc(fmtTime(s.last_error_ms) + " " + s.last_error) : "";
      }]
    ], rows, "no exporters running");
  }

  // The grouped summary: one row per value of the group-by dimension, `other` last.
  function renderGroups(answer) {
    var rows = answer.groups.slice();
    if (answer.other) { answer.other.value = "other (outside the top values)"; rows.push(answer.other); }
    $("groups-title").textContent = "by " + answer.group_by + " · " + answer.groups.length + " values";
    table("groups", [
      [answer.group_by, function (g) { return esc(g.value); }],
      ["generations", function (g) { return esc(fmtInt(g.total_generations)); }],
      ["success", function (g) { return esc(fmtPct(g.success_rate)); }],
      ["avg duration", function (g) { return esc(fmtMs(g.average_duration_ms)); }],
      ["cost", function (g) { return esc(fmtUsd(g.total_cost_usd)); }],
      ["cost/user", function (g) { return esc(fmtUsd(g.cost_per_user_usd)); }],
      ["events", function (g) { return esc(fmtInt(g.events)); }]
    ], rows, "no data in this view");
  }

  function renderAlerts(alerts) {
    table("alert-list", [
      ["time", function (a) { return esc(new Date(a.time_ms).toLocaleString()); }],
      ["severity", function (a) { return '<span class="sev sev-' + esc(a.severity) + '">' + esc(a.severity) + "</span>"; }],
      ["status", function (a) { return esc(a.status); }],
      ["rule", function (a) { return esc(a.rule); }],
      ["scope", function (a) { return esc(a.scope); }],
      ["message", function (a) { return esc(a.message); }]
    ], alerts, "no alerts");
  }

  // ---------------------------------------------------------------- loading -------------
  function compactView() {
    return Boolean(state.filters.user || state.filters.tag || /^(user|tag:)/.test(state.groupBy));
  }

  function ts(metric) {
    if (compactView() && COMPACT_SERIES.indexOf(metric) < 0) return Promise.resolve([]);
    return api("/v1/metrics/timeseries?" + grouped("metric=" + metric + "&step=" + STEPS[state.range]));
  }

  function load() {
    if (!state.token) { showSignin(); return Promise.resolve(); }
    if (state.loading) { state.again = true; return Promise.resolve(); }
    state.loading = true;
    var today = new Date().toISOString().slice(0, 10);
    var from = new Date(Date.now() - 13 * 86400000).toISOString().slice(0, 10);
    var filters = filterQuery();
    var calls = [
      api("/v1/metrics/summary?" + sliced()), api("/v1/metrics/performance?" + sliced()),
      api("/v1/metrics/costs?" + sliced()), api("/v1/metrics/quality?" + sliced()),
      api("/v1/metrics/health?" + sliced()), api("/v1/budgets"),
      api("/v1/alerts?limit=50"), api("/v1/errors/recent?limit=20"),
      api("/v1/costs/daily?from=" + from + "&to=" + today + (filters ? "&" + filters : "")),
      ts("p50_duration_ms"), ts("p95_duration_ms"), ts("cache_hit_rate"), ts("error_rate"),
      ts("acceptance_rate"), ts("edit_rate"), api("/v1/health/sinks"),
      state.groupBy ? api("/v1/metrics/summary?" + grouped()) : Promise.resolve(null),
      // top users take no filter but user= (one bounded table)
      FILTERS.every(function (f) { return f === "user" || !state.filters[f]; })
        ? api("/v1/top/users?" + sliced("by=cost&limit=10")) : Promise.resolve(null)
    ];
    return Promise.all(calls.map(settle)).then(function (results) {
      // a figure this slice cannot answer (422 unsupported_filter) empties its chart and is
      // said once under the filter bar; it is not an outage
      var unsupported = results.filter(function (x) { return !x.ok && x.error.code === "unsupported_filter"; });
      $("slice-note").textContent = unsupported.length ? "Not for this view: " + unsupported[0].error.message
        : compactView() ? "Per user or tag only counts, errors and money are kept: latency, cache and quality charts stay empty." : "";
      var failed = results.filter(function (x) { return !x.ok && x.error.code !== "unsupported_filter"; })
        .map(function (x) { return x.error; });
      var auth = failed.filter(function (e) { return e.status === 401 || e.status === 403; })[0];
      if (auth) { signOut("That token was refused: " + auth.message); return; }
      var r = results.map(function (x) { return x.ok ? x.value : null; });
      var series = function (i) { return r[i] || []; };
      // Each section renders from what arrived; a failed call leaves its section as it was.
      if (r[0]) renderOverview(r[0]);
      if (r[1]) renderPerformance(filled("performance", r[1]), {p50: series(9), p95: series(10), cache: series(11)});
      var top = r[17] ? r[17].users : (r[2] && r[2].by_user || []).map(function (u) {
        return {user: u.user_id, cost_usd: u.cost_usd};
      });
      if (r[2] && r[5] && r[8]) renderCosts(filled("costs", r[2]), r[5], r[8], top);
      if (r[3]) renderQuality(filled("quality", r[3]), {acceptance: series(13), edits: series(14)});
      if (r[4] && r[7]) renderHealth(filled("health", r[4]), r[7], {errors: series(12)});
      if (r[6]) renderAlerts(r[6]);
      if (r[15]) renderExporters(r[15]);
      if (r[16]) renderGroups(r[16]);
      else if (state.groupBy) $("groups").innerHTML = '<div class="empty">not for this view</div>';
      if (!failed.length) {
        state.lastOk = Date.now();
        $("updated").textContent = "updated " + fmtTime(state.lastOk);
        hideBanner();
        return;
      }
      var err = failed[0];
      showBanner(err.status === 503
        ? "Metrics are unavailable (" + err.message + "). Showing the last data; retrying…"
        : err.status === 0 ? "The API is unreachable. Showing the last data; retrying…"
        : "The API answered " + err.status + ": " + err.message);
    }).then(function () {
      state.loading = false;
      if (state.again) { state.again = false; load(); }
    });
  }

  function settle(promise) {
    return promise.then(function (value) { return {ok: true, value: value}; },
                        function (error) { return {ok: false, error: error}; });
  }

  function showBanner(text) { var b = $("banner"); b.textContent = text; b.hidden = false; document.body.dataset.state = "error"; }
  function hideBanner() { $("banner").hidden = true; document.body.dataset.state = "ok"; }

  // ---------------------------------------------------------------- live updates --------
  function connectStream() {
    if (state.stream) state.stream.abort();
    var controller = new AbortController();
    state.stream = controller;
    var live = $("live");
    fetch("/v1/stream?" + query(), {headers: {Authorization: "Bearer " + state.token, Accept: "text/event-stream"},
                                    signal: controller.signal})
      .then(function (response) {
        if (!response.ok) throw new ApiError(response.status, "stream refused");
        live.className = "live on";
        var reader = response.body.getReader();
        var decoder = new TextDecoder();
        var pending = "";
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) throw new ApiError(0, "stream ended");
            pending += decoder.decode(chunk.value, {stream: true});
            var cut;
            while ((cut = pending.indexOf("\n\n")) >= 0) {
              var block = pending.slice(0, cut);
              pending = pending.slice(cut + 2);
              if (/^event: snapshot$/m.test(block)) load();
              if (/^event: unavailable$/m.test(block)) load();
            }
            return pump();
          });
        }
        return pump();
      })
      .catch(function () {
        if (controller.signal.aborted) return;
        live.className = "live off";
        setTimeout(function () { if (state.stream === controller) { connectStream(); load(); } }, 2000);
      });
  }

  // ---------------------------------------------------------------- sign-in and UI ------
  function showSignin(message) {
    $("signin").hidden = false;
    var e = $("signin-error");
    e.hidden = !message;
    e.textContent = message || "";
    $("token").focus();
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
    if (state.stream) state.stream.abort();
    showSignin(message);
  }

  function start() {
    $("signin").hidden = true;
    load();
    connectStream();
    suggest();
  }

  function download(group, format) {
    var name = group === "alerts" ? "alerts" : group;
    fetch("/v1/export/" + name + "." + format + "?" + (name === "alerts" ? query() : grouped()),
          {headers: {Authorization: "Bearer " + state.token}})
      .then(function (response) {
        if (!response.ok) throw new ApiError(response.status, "export failed");
        return response.blob();
      })
      .then(function (blob) {
        var a = document.createElement("a");
        a.href = URL.createObjectURL(blob);
        a.download = "genpulse-" + name + "." + format;
        document.body.appendChild(a);
        a.click();
        setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
      })
      .catch(function (err) { showBanner("Export failed: " + err.message); });
  }

  document.querySelectorAll(".exports").forEach(function (slot) {
    ["csv", "json"].forEach(function (format) {
      var b = document.createElement("button");
      b.textContent = format.toUpperCase();
      b.dataset.export = slot.dataset.group + "." + format;
      b.addEventListener("click", function () { download(slot.dataset.group, format); });
      slot.appendChild(b);
    });
  });

  document.querySelectorAll(".ranges button").forEach(function (b) {
    b.addEventListener("click", function () {
      state.range = b.dataset.range;
      writeHash();
      showView();
      load();
      connectStream();
      suggest();
    });
  });

  $("signin-form").addEventListener("submit", function (event) {
    event.preventDefault();
    state.token = $("token").value.trim();
    $("token").value = "";
    sessionStorage.setItem(TOKEN_KEY, state.token);
    start();
  });
  $("signout").addEventListener("click", function () { signOut(); });
  $("filters").addEventListener("submit", function (event) { event.preventDefault(); applyControls(); });
  $("f-group").addEventListener("change", function () {
    if ($("f-group").value === "tag" && !$("f-group-tag").value.trim()) {
      $("f-group-tag").hidden = false;
      $("f-group-tag").focus();
      return;  // applied once a tag key is given
    }
    applyControls();
  });
  $("f-clear").addEventListener("click", function () {
    FILTERS.forEach(function (f) { $("f-" + f).value = ""; });
    $("f-group").value = "";
    $("f-group-tag").value = "";
    applyControls();
  });
  window.addEventListener("hashchange", function () { readHash(); if (state.token) load(); });
  readHash();

  // A slow poll as a safety net: live updates normally arrive through /v1/stream.
  setInterval(function () { if (state.token) load(); }, 30000);
  if (state.token) start(); else showSignin();
})();
