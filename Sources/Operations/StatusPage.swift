/// The status page: one self-contained HTML document (style and script inline, no CDN, no build
/// step), so it works offline and from the binary alone. Its script polls `/api/status` every
/// two seconds and draws whichever document it gets: a relay's (backlog, deliveries, leases) or
/// a consumer's (lag per partition, last applied events).
///
/// Every value from the document is written with `textContent`, never parsed as HTML: tenant
/// names and error texts come from the database and could hold markup.
enum StatusPage {
    /// Inline style and script only, data from this origin only, nothing loaded from elsewhere.
    static let contentSecurityPolicy =
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:"

    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>OutboxBridge status</title>
        <style>
          :root { --ok: #1a7f37; --bad: #c62828; --warn: #b26a00; --muted: #5f6b7a; --line: #d8dee4; }
          * { box-sizing: border-box; }
          body { margin: 0; font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; background: #f6f8fa; }
          header { background: #24292f; color: #fff; padding: 12px 16px; display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center; }
          header h1 { font-size: 18px; margin: 0; flex: 1 1 auto; }
          #readiness { padding: 2px 10px; border-radius: 12px; font-weight: 600; background: var(--muted); }
          #readiness.ready { background: var(--ok); }
          #readiness.unready { background: var(--bad); }
          #updated { color: #c9d1d9; font-size: 13px; }
          main { padding: 12px; display: grid; gap: 12px; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); max-width: 1400px; margin: 0 auto; }
          section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px; min-width: 0; }
          section h2 { font-size: 15px; margin: 0 0 8px; }
          .wide { grid-column: 1 / -1; }
          .figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(120px, 1fr)); gap: 8px; }
          .figure { border: 1px solid var(--line); border-radius: 6px; padding: 8px; }
          .figure b { display: block; font-size: 22px; }
          .figure span { color: var(--muted); font-size: 13px; }
          .bad b { color: var(--bad); }
          table { width: 100%; border-collapse: collapse; font-size: 13px; }
          th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid var(--line); vertical-align: top; }
          th { color: var(--muted); font-weight: 600; white-space: nowrap; }
          td { overflow-wrap: break-word; }
          .scroll { overflow-x: auto; }
          .empty { color: var(--muted); font-style: italic; }
          #problems { margin: 0; padding-left: 18px; color: var(--bad); }
          #error { display: none; background: #fff0f0; color: var(--bad); border: 1px solid var(--bad); }
          svg { width: 100%; height: 140px; display: block; }
          svg .bar { fill: #2f81f7; }
          svg .axis { stroke: var(--line); }
          .axis-labels { display: flex; justify-content: space-between; color: var(--muted); font-size: 12px; }
          @media (max-width: 480px) { main { padding: 6px; gap: 8px; } .figure b { font-size: 18px; } }
        </style>
        </head>
        <body>
        <header><h1>OutboxBridge</h1><span id="readiness">loading</span><span id="updated"></span></header>
        <main>
          <section id="error" class="wide"></section>
          <section id="not-ready" class="wide" hidden><h2>Why not ready</h2><ul id="problems"></ul></section>
          <section class="wide"><div class="figures" id="figures"></div></section>
          <section id="rate-section" class="wide" hidden><h2>Deliveries per second, last 5 minutes</h2><svg id="rate" viewBox="0 0 600 140" preserveAspectRatio="none" role="img" aria-label="deliveries per second"></svg><div class="axis-labels"><span>5 min ago</span><span id="rate-peak"></span><span>now</span></div></section>
          <section id="backlog-section" hidden><h2>Backlog per tenant</h2><div class="scroll" id="backlog"></div></section>
          <section id="instances-section" hidden><h2>Relay instances and shard leases</h2><div class="scroll" id="instances"></div></section>
          <section id="retrying-section" hidden><h2>Retrying</h2><div class="scroll" id="retrying"></div></section>
          <section id="deliveries-section" class="wide" hidden><h2>Last deliveries</h2><div class="scroll" id="deliveries"></div></section>
          <section id="lag-section" hidden><h2>Lag per partition</h2><div class="scroll" id="lag"></div></section>
          <section id="applied-section" class="wide" hidden><h2>Last applied event per tenant</h2><div class="scroll" id="applied"></div></section>
          <section id="dead-section" class="wide" hidden><h2>Dead letters</h2><div class="scroll" id="dead"></div></section>
        </main>
        <script>
        "use strict";
        const byId = (id) => document.getElementById(id);
        const element = (tag, text, className) => {
          const node = document.createElement(tag);
          if (text !== undefined && text !== null) node.textContent = String(text);
          if (className) node.className = className;
          return node;
        };
        const age = (seconds) => {
          if (seconds === null || seconds === undefined) return "none";
          if (seconds < 60) return seconds.toFixed(1) + " s";
          if (seconds < 3600) return (seconds / 60).toFixed(1) + " min";
          return (seconds / 3600).toFixed(1) + " h";
        };
        function table(containerId, sectionId, columns, rows, emptyText) {
          const container = byId(containerId);
          byId(sectionId).hidden = false;
          container.replaceChildren();
          if (!rows || rows.length === 0) { container.append(element("p", emptyText, "empty")); return; }
          const head = element("tr");
          for (const [title] of columns) head.append(element("th", title));
          const body = element("tbody");
          for (const row of rows) {
            const line = element("tr");
            for (const [, value] of columns) line.append(element("td", value(row)));
            body.append(line);
          }
          const result = element("table");
          result.append(element("thead"), body);
          result.firstChild.append(head);
          container.append(result);
        }
        function figures(list) {
          const container = byId("figures");
          container.replaceChildren();
          for (const [label, value, bad] of list) {
            const figure = element("div", undefined, bad ? "figure bad" : "figure");
            figure.append(element("b", value), element("span", label));
            container.append(figure);
          }
        }
        function chart(samples) {
          byId("rate-section").hidden = false;
          const svg = byId("rate");
          const ns = "http://www.w3.org/2000/svg";
          svg.replaceChildren();
          const width = 600, height = 140, top = 4, bottom = 2;
          const peak = Math.max(1, ...samples.map((s) => s.events_per_second));
          const step = width / Math.max(1, samples.length);
          const axis = document.createElementNS(ns, "line");
          axis.setAttribute("class", "axis");
          axis.setAttribute("x1", 0); axis.setAttribute("x2", width);
          axis.setAttribute("y1", height - bottom); axis.setAttribute("y2", height - bottom);
          svg.append(axis);
          samples.forEach((sample, index) => {
            const barHeight = (height - top - bottom) * sample.events_per_second / peak;
            const bar = document.createElementNS(ns, "rect");
            bar.setAttribute("class", "bar");
            bar.setAttribute("x", index * step + 1);
            bar.setAttribute("width", Math.max(1, step - 2));
            bar.setAttribute("y", height - bottom - barHeight);
            bar.setAttribute("height", barHeight);
            const title = document.createElementNS(ns, "title");
            title.textContent = sample.events_per_second.toFixed(2) + " events/s, " + sample.seconds_ago + " s ago";
            bar.append(title);
            svg.append(bar);
          });
          byId("rate-peak").textContent = "peak " + peak.toFixed(1) + " events/s";
        }
        function readiness(status) {
          const badge = byId("readiness");
          const problems = status.readiness ? status.readiness.problems : [];
          const ready = status.readiness ? status.readiness.ready : null;
          badge.textContent = ready === null ? "readiness unknown" : (ready ? "ready" : "not ready");
          badge.className = ready === null ? "" : (ready ? "ready" : "unready");
          byId("not-ready").hidden = problems.length === 0;
          byId("problems").replaceChildren(...problems.map((problem) => element("li", problem)));
        }
        function drawRelay(status) {
          figures([
            ["pending", status.pending, false],
            ["oldest pending", age(status.oldest_pending_age_seconds), status.oldest_pending_age_seconds > 300],
            ["in flight", status.in_flight === null ? "?" : status.in_flight, false],
            ["retrying", status.retrying.length, status.retrying.length > 0],
            ["dead", status.dead, status.dead > 0],
            ["delivered", status.processed, false],
            ["relay instances", status.instances.length, status.instances.length === 0],
            ["unowned shards", status.unowned_shards.length, status.unowned_shards.length > 0],
          ]);
          chart(status.delivery_rate);
          table("backlog", "backlog-section", [
            ["tenant", (r) => r.tenant || "(none)"], ["pending", (r) => r.pending], ["oldest", (r) => age(r.oldest_age_seconds)],
          ], status.backlog, "nothing pending");
          table("instances", "instances-section", [
            ["instance", (r) => r.id.slice(0, 8)], ["host", (r) => r.host || ""],
            ["heartbeat", (r) => age(r.heartbeat_age_seconds) + " ago"],
            ["shards", (r) => r.shards.length ? r.shards.join(", ") : "none"],
          ], status.instances, "no relay instance has registered");
          table("retrying", "retrying-section", [
            ["id", (r) => r.id], ["tenant", (r) => r.tenant || ""], ["attempts", (r) => r.attempts],
            ["next", (r) => r.next_attempt_at || "now"], ["last error", (r) => r.last_error || ""],
          ], status.retrying, "nothing is retrying");
          table("deliveries", "deliveries-section", [
            ["id", (r) => r.id], ["tenant", (r) => r.tenant || ""], ["command", (r) => r.command || ""],
            ["topic", (r) => r.topic], ["partition", (r) => r.partition], ["offset", (r) => r.offset],
            ["delivered", (r) => r.delivered_at],
          ], status.recent_deliveries, "nothing delivered yet");
          table("dead", "dead-section", [
            ["id", (r) => r.id], ["tenant", (r) => r.tenant || ""], ["command", (r) => r.command || ""],
            ["attempts", (r) => r.attempts], ["reason", (r) => r.reason || ""],
          ], status.dead_letters, "no dead letters");
        }
        function drawConsumer(status) {
          figures([
            ["group", status.group, false],
            ["total lag", status.total_lag, status.total_lag > 0],
            ["applied", status.applied, false],
            ["dead letters", status.dead_letters.length, status.dead_letters.length > 0],
          ]);
          table("lag", "lag-section", [
            ["topic", (r) => r.topic], ["partition", (r) => r.partition], ["next offset", (r) => r.next_offset],
            ["end", (r) => r.high_watermark == null ? "?" : r.high_watermark], ["lag", (r) => r.lag == null ? "?" : r.lag],
          ], status.partitions, "no partition assigned yet");
          table("applied", "applied-section", [
            ["tenant", (r) => r.tenant], ["command", (r) => r.command || ""], ["event", (r) => r.event_id],
            ["topic", (r) => r.topic], ["partition", (r) => r.partition], ["offset", (r) => r.offset],
            ["applied", (r) => r.applied_at],
          ], status.last_applied, "nothing applied yet");
          table("dead", "dead-section", [
            ["event", (r) => r.event_id || ""], ["topic", (r) => r.topic], ["partition", (r) => r.partition],
            ["offset", (r) => r.offset], ["reason", (r) => r.reason],
          ], status.dead_letters, "no dead letters");
        }
        async function refresh() {
          const error = byId("error");
          try {
            const response = await fetch("api/status", { cache: "no-store" });
            if (!response.ok) throw new Error("/api/status answered " + response.status);
            const status = await response.json();
            readiness(status);
            if ("group" in status) drawConsumer(status); else drawRelay(status);
            byId("updated").textContent = "updated " + new Date().toLocaleTimeString();
            error.style.display = "none";
          } catch (problem) {
            error.textContent = "Cannot read the status: " + problem.message;
            error.style.display = "block";
          }
        }
        refresh();
        setInterval(refresh, 2000);
        </script>
        </body>
        </html>
        """#
}
