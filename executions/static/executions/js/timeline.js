/* The Timeline (Gantt) and Trace (tree) tabs of one execution, kept live and zoomable.

   The server sends the spans saved so far as one JSON array (#span-rows, in the tree's order);
   this script draws both tabs from one model of rows: the spans (from the page, then from each
   span.ended event) and, for a node that has
   started but whose span has not ended yet, an open row from the node's own times that grows to
   "now". New rows are inserted where they belong and nothing else is touched: the DOM is never
   rebuilt per event. Bars are placed by CSS from each row's --s (start) and --d (duration), in ms
   from the run's start, against the view's --v0 and --vspan on the timeline: zooming or panning
   sets those two properties, not 1,000 rows. Rows off screen are skipped by the browser
   (content-visibility in app.css). A parked node (sleeping, waiting: workflows.waits) is an open
   row of its own bar style from its start to now, its due time marked (--due) when it has one.
   No inline styles: every value is set from here (CSP). */
"use strict";

window.c4cTimeline = (() => {
  const NODE_SPAN = "workflow.node.";
  const ZOOM_STEP = 1.6;
  const MIN_SPAN_MS = 0.5;
  const TICK_TARGET = 6;
  const PARKED = ["sleeping", "waiting"];
  const NEAR_DUE_MS = 60_000;

  function element(tag, text, className) {
    const el = document.createElement(tag);
    if (text !== undefined) el.textContent = text;
    if (className) el.className = className;
    return el;
  }

  function formatMs(ms) {
    if (ms === 0) return "<1 ms"; // c4c's span times are whole ms
    if (ms < 1) return `${ms.toFixed(2)} ms`;
    return c4c.formatDuration(ms);
  }

  function dueText(ms) {
    return new Date(ms).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  }

  function tickLabel(value, step) {
    if (step >= 1000) return `${(value / 1000).toFixed(step % 1000 === 0 ? 0 : 1)} s`;
    if (step >= 1) return `${Math.round(value)} ms`;
    return `${value.toFixed(2)} ms`;
  }

  /* Mount on the page's #timeline and #trace holders; `glyphs` is the server's status glyphs. */
  function mount({ timelineHolder, traceHolder, glyphs, onCount }) {
    const rows = new Map(); // id -> row
    const view = { v0: 0, vspan: 1, follow: true };
    let root = null;
    let list = null;
    let traceList = null;
    let origin = 0;
    let running = false;
    let nodes = {};
    let ticker = null;

    /* ---- the model ------------------------------------------------------------------------ */

    function spanRow(data) {
      return {
        id: data.id,
        parent: data.parent || "",
        start: data.start,
        end: data.end,
        name: data.name,
        status: data.status,
        nodeId: data.nodeId || "",
        attempt: data.attempt || null,
        json: data.json || null,
        open: false,
        depth: -1,
        tl: data.tl || null,
        tr: data.tr || null,
        due: data.due || null,
      };
    }

    /* The partials' spans: the page's, or a catch-up's after they were swapped in. */
    function fromPage() {
      rows.clear();
      root = timelineHolder.querySelector("[data-timeline]");
      list = root.querySelector("[data-tl-rows]");
      traceList = traceHolder.querySelector("[data-trace]");
      origin = Date.parse(root.dataset.startedAt);
      for (const span of JSON.parse(root.querySelector("#span-rows").textContent)) {
        const start = span.startUs / 1000;
        if (start < origin || Number.isNaN(origin)) origin = start;
        rows.set(
          span.id,
          spanRow({
            id: span.id,
            parent: span.parent,
            start,
            end: span.endUs / 1000,
            name: span.name,
            status: span.status,
            nodeId: span.attributes ? span.attributes["node.id"] : "",
            attempt: span.attempt,
            json: {
              spanId: span.id,
              kind: span.kind,
              status: { code: span.status, message: span.message },
              attributes: span.attributes,
              events: span.events,
            },
          }),
        );
      }
      bindView();
    }

    function addSpans(spans) {
      for (const span of spans) {
        if (rows.has(span.spanId)) continue;
        const attempt = span.attributes ? span.attributes["procedure.attempt"] : null;
        rows.set(
          span.spanId,
          spanRow({
            id: span.spanId,
            parent: span.parentSpanId,
            start: span.startTime,
            end: span.endTime,
            name: span.name,
            status: span.status.code,
            nodeId: span.attributes ? span.attributes["node.id"] : "",
            attempt: Number.isInteger(attempt) && attempt > 1 ? attempt : null,
            json: span,
          }),
        );
      }
      schedule();
    }

    /* The node spans present, by node id. */
    function nodeSpans() {
      const byNode = new Map();
      for (const row of rows.values()) {
        if (row.open || !row.nodeId || !row.name.startsWith(NODE_SPAN)) continue;
        if (!byNode.has(row.nodeId)) byNode.set(row.nodeId, []);
        byNode.get(row.nodeId).push(row);
      }
      return byNode;
    }

    /* Open rows: a node that started and has no span yet (none holds its start), from its own
       times; a parked node always (its span, if any, ended when the run parked). */
    function syncNodes() {
      const wanted = new Set();
      const byNode = nodeSpans();
      const covered = (nodeId, start) =>
        (byNode.get(nodeId) || []).some((row) => row.start <= start + 1 && row.end >= start - 1);
      for (const detail of Object.values(nodes)) {
        if (!detail.startTime || detail.reused) continue;
        if (detail.status !== "running" && !running) continue;
        const start = Date.parse(detail.startTime);
        const parked = PARKED.includes(detail.status);
        if (!parked && covered(detail.nodeId, start)) continue;
        const id = `node:${detail.nodeId}`;
        wanted.add(id);
        const going = detail.status === "running" || parked;
        const end = going || !detail.endTime ? null : Date.parse(detail.endTime);
        const status = going ? detail.status : detail.status === "failed" ? "ERROR" : "OK";
        const due = parked && detail.wakeAt ? Date.parse(detail.wakeAt) : null;
        const row = rows.get(id);
        if (row && row.start === start && row.end === end && row.status === status && row.due === due) continue;
        if (row) removeRow(row);
        rows.set(id, {
          ...spanRow({ id, start, end, name: `${NODE_SPAN}${detail.nodeType || "node"}`, status, nodeId: detail.nodeId, due }),
          open: true,
        });
      }
      for (const row of [...rows.values()]) {
        if (row.open && !wanted.has(row.id)) removeRow(row);
      }
    }

    function removeRow(row) {
      row.tl?.remove();
      row.tr?.remove();
      rows.delete(row.id);
    }

    /* Depth-first under parents that are present (others are roots), siblings by start. */
    function ordered() {
      const children = new Map();
      const roots = [];
      const sorted = [...rows.values()].sort((a, b) => a.start - b.start || endOf(b) - endOf(a) || (a.id < b.id ? -1 : 1));
      for (const row of sorted) {
        if (row.parent && row.parent !== row.id && rows.has(row.parent)) {
          if (!children.has(row.parent)) children.set(row.parent, []);
          children.get(row.parent).push(row);
        } else {
          roots.push(row);
        }
      }
      const out = [];
      const stack = roots.reverse().map((row) => [row, 0]);
      const seen = new Set();
      while (stack.length) {
        const [row, depth] = stack.pop();
        if (seen.has(row.id)) continue;
        seen.add(row.id);
        row.depthNext = depth;
        out.push(row);
        const kids = children.get(row.id) || [];
        for (let i = kids.length - 1; i >= 0; i--) stack.push([kids[i], depth + 1]);
      }
      return out;
    }

    function endOf(row) {
      return row.end === null ? Date.now() : row.end;
    }

    /* ---- rendering -------------------------------------------------------------------------- */

    function glyph(status) {
      return glyphs[status] || "•";
    }

    function timelineItem(row) {
      const li = element("li", undefined, row.open ? "tl-row tl-open" : "tl-row");
      li.dataset.spanId = row.id;
      if (row.nodeId) li.dataset.nodeId = row.nodeId;
      li.dataset.status = row.status;
      const details = element("details");
      details.dataset.spanId = row.id;
      const summary = element("summary");
      const label = element("span", undefined, "tl-label");
      const mark = element("span", glyph(row.status), `glyph status-${row.status}`);
      mark.setAttribute("aria-hidden", "true");
      label.append(mark, " ", element("span", row.name, "tl-name"));
      if (row.nodeId) label.append(" ", element("span", row.nodeId, "muted mono"));
      if (PARKED.includes(row.status)) label.append(" ", element("span", row.due ? `${row.status} until ${dueText(row.due)}` : row.status, "tl-wake muted"));
      if (row.attempt) {
        const tag = element("span", `attempt ${row.attempt}`, "attempt-tag");
        tag.dataset.attempt = row.attempt;
        label.append(" ", tag);
      }
      const track = element("span", undefined, "tl-track");
      const bar = element("span", undefined, `tl-bar status-${row.status}`);
      const duration = element("span", "", "tl-dur");
      track.append(bar, duration);
      if (row.due) {
        const due = element("span", undefined, "tl-due");
        due.title = `Due ${dueText(row.due)}`;
        due.setAttribute("aria-hidden", "true");
        track.append(due);
      }
      summary.append(label, track);
      details.append(summary);
      li.append(details);
      return li;
    }

    function traceItem(row) {
      const li = element("li", undefined, row.open ? "trace-row trace-open" : "trace-row");
      li.dataset.spanId = row.id;
      const details = element("details");
      const summary = element("summary");
      const name = element("span", undefined, "trace-name");
      const badge = element("span", undefined, `status status-${row.status}`);
      const mark = element("span", glyph(row.status), "glyph");
      mark.setAttribute("aria-hidden", "true");
      badge.append(mark, ` ${row.status}`);
      name.append(badge, " ", element("strong", row.name));
      if (row.nodeId) name.append(" ", element("span", row.nodeId, "muted mono"));
      if (row.attempt) name.append(" ", element("span", `attempt ${row.attempt}`, "attempt-tag"));
      const meta = element("span", undefined, "trace-meta");
      if (row.json) {
        const attrs = Object.keys(row.json.attributes || {}).length;
        const events = (row.json.events || []).length;
        meta.append(element("span", `${attrs} attr${attrs === 1 ? "" : "s"}, ${events} event${events === 1 ? "" : "s"}`, "muted small"), " ");
      }
      meta.append(element("span", "", "num"));
      summary.append(name, meta);
      details.append(summary);
      li.append(details);
      return li;
    }

    /* A span's attributes and events, built when its row is first opened. */
    function spanDetail(row) {
      const box = element("div", undefined, "span-detail");
      if (row.open) {
        const parked = PARKED.includes(row.status);
        const due = row.due ? ` until ${dueText(row.due)}` : "";
        const text = parked ? `${row.status === "sleeping" ? "Sleeping" : "Waiting"}${due}: no thread holds it; the bar grows until it is taken up again.` : "Running: its span is recorded when the node ends.";
        box.append(element("p", text, "muted small"));
        return box;
      }
      const span = row.json;
      const meta = element("p", undefined, "span-meta small");
      meta.append(element("span", span.spanId, "mono"), `, ${span.kind}, ${span.status.code}`);
      if (span.status.message) meta.append(` — ${span.status.message}`);
      box.append(meta);
      const attributes = Object.entries(span.attributes || {});
      if (attributes.length) {
        const table = element("table", undefined, "kv");
        table.append(element("caption", "Attributes", "sr-only"));
        for (const [key, value] of attributes) {
          const tr = element("tr");
          const th = element("th", key, "mono");
          th.scope = "row";
          tr.append(th, element("td", typeof value === "string" ? value : JSON.stringify(value), "mono"));
          table.append(tr);
        }
        box.append(table);
      } else {
        box.append(element("p", "No attributes.", "muted small"));
      }
      if (span.events && span.events.length) {
        const events = element("ul", undefined, "span-events");
        for (const event of span.events) {
          const item = element("li");
          item.append(element("span", event.name, "mono"));
          if (event.attributes && Object.keys(event.attributes).length) {
            item.append(" ", element("span", JSON.stringify(event.attributes, null, 2), "muted small mono"));
          }
          events.append(item);
        }
        box.append(element("h4", "Events"), events);
      }
      return box;
    }

    /* Put `items` in this order in `parent`, moving only what is out of place. */
    function reconcile(parent, items) {
      let cursor = parent.firstElementChild;
      for (const item of items) {
        if (item === cursor) {
          cursor = cursor.nextElementSibling;
        } else {
          parent.insertBefore(item, cursor);
        }
      }
      while (cursor) {
        const next = cursor.nextElementSibling;
        cursor.remove();
        cursor = next;
      }
    }

    function place(row) {
      const end = endOf(row);
      row.tl.style.setProperty("--s", (row.start - origin).toFixed(3));
      if (row.due) row.tl.style.setProperty("--due", (row.due - origin).toFixed(3));
      row.tl.style.setProperty("--d", Math.max(end - row.start, 0).toFixed(3));
      const text = formatMs(Math.max(end - row.start, 0));
      const duration = row.tl.querySelector(".tl-dur");
      if (duration.firstChild?.nodeType === Node.TEXT_NODE) duration.firstChild.textContent = text;
      else duration.prepend(text);
      const traceDuration = row.tr?.querySelector(".trace-meta .num");
      if (traceDuration) traceDuration.textContent = row.open && row.end === null ? `${text}…` : text;
    }

    /* Events come in bursts (a fast run sends hundreds a second): one render per frame. */
    let pending = false;
    function schedule() {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        syncNodes();
        render();
      });
    }

    function render() {
      const order = ordered();
      for (const row of order) {
        if (!row.tl) row.tl = timelineItem(row);
        if (!row.tr) row.tr = traceItem(row);
        if (row.depth !== row.depthNext) {
          row.depth = row.depthNext;
          row.tl.style.setProperty("--depth", row.depth);
          row.tr.style.setProperty("--depth", row.depth);
        }
        if (!row.placed || row.open) {
          place(row);
          row.placed = true;
        }
      }
      reconcile(list, order.map((row) => row.tl));
      reconcile(traceList, order.map((row) => row.tr));
      const spans = order.filter((row) => !row.open).length;
      root.querySelector("[data-tl-empty]").hidden = order.length > 0;
      const traceEmpty = traceHolder.querySelector("[data-trace-empty]");
      if (traceEmpty) traceEmpty.hidden = order.length > 0;
      root.dataset.spanCount = String(spans);
      const summary = root.querySelector("[data-tl-summary]");
      const running = order.length - spans;
      summary.textContent = `${spans} span${spans === 1 ? "" : "s"}${running ? `, ${running} running` : ""}, ${formatMs(extent())}`;
      onCount(spans);
      applyView();
      tick();
    }

    /* ---- the view: zoom and pan -------------------------------------------------------------- */

    /* To now (a run going on) or its last end; and to a parked node's due time when that is
       near (within a minute, or within the run's age): a short sleep's bar is seen growing to its
       mark, while a day-long wait does not squash the rest (its mark then sits at the edge). */
    function extent() {
      const now = Date.now();
      let end = running ? now : origin;
      for (const row of rows.values()) end = Math.max(end, endOf(row));
      for (const row of rows.values()) {
        if (row.due && row.due - now <= Math.max(NEAR_DUE_MS, now - origin)) end = Math.max(end, row.due);
      }
      return Math.max(end - origin, MIN_SPAN_MS);
    }

    function clampView() {
      const total = extent();
      view.vspan = Math.min(Math.max(view.vspan, MIN_SPAN_MS), total);
      view.v0 = Math.min(Math.max(view.v0, 0), total - view.vspan);
    }

    function applyView() {
      if (view.follow) {
        view.v0 = 0;
        view.vspan = extent();
      }
      clampView();
      root.style.setProperty("--v0", view.v0.toFixed(3));
      root.style.setProperty("--vspan", view.vspan.toFixed(3));
      drawAxis();
    }

    function drawAxis() {
      const axis = root.querySelector("[data-tl-axis]");
      const raw = view.vspan / TICK_TARGET;
      const magnitude = 10 ** Math.floor(Math.log10(raw));
      const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw);
      const ticks = [];
      for (let value = Math.ceil(view.v0 / step) * step; value <= view.v0 + view.vspan + step * 1e-9; value += step) {
        const tick = element("span", tickLabel(value, step), "tick");
        tick.style.left = `${((value - view.v0) / view.vspan) * 100}%`;
        ticks.push(tick);
      }
      axis.replaceChildren(...ticks);
    }

    function zoom(factor, anchor = 0.5) {
      const at = view.v0 + view.vspan * anchor;
      view.follow = false;
      view.vspan = view.vspan / factor;
      view.v0 = at - view.vspan * anchor;
      if (view.vspan >= extent()) view.follow = true;
      applyView();
    }

    function pan(fraction) {
      view.follow = false;
      view.v0 += view.vspan * fraction;
      applyView();
    }

    function fit() {
      view.follow = true;
      applyView();
    }

    /* Open bars grow to "now" while the run goes on; nothing else is redrawn. */
    function tick() {
      const open = [...rows.values()].filter((row) => row.open && row.end === null);
      if (!open.length && !running) {
        clearInterval(ticker);
        ticker = null;
        return;
      }
      if (ticker === null) ticker = setInterval(tick, 250);
      for (const row of open) place(row);
      if (view.follow) applyView();
    }

    function trackFraction(clientX) {
      const track = root.querySelector(".tl-axis .tl-track").getBoundingClientRect();
      return Math.min(Math.max((clientX - track.left) / Math.max(track.width, 1), 0), 1);
    }

    function trackWidth() {
      return Math.max(root.querySelector(".tl-axis .tl-track").getBoundingClientRect().width, 1);
    }

    function bindView() {
      if (root.dataset.bound) return;
      root.dataset.bound = "true";
      const viewport = root.querySelector("[data-tl-view]");
      root.querySelector(".tl-toolbar").addEventListener("click", (event) => {
        const button = event.target.closest("button[data-zoom]");
        if (!button) return;
        const actions = { in: () => zoom(ZOOM_STEP), out: () => zoom(1 / ZOOM_STEP), left: () => pan(-0.25), right: () => pan(0.25), fit };
        actions[button.dataset.zoom]();
      });
      viewport.addEventListener("keydown", (event) => {
        if (event.altKey || event.ctrlKey || event.metaKey) return;
        const keys = { "+": () => zoom(ZOOM_STEP), "=": () => zoom(ZOOM_STEP), "-": () => zoom(1 / ZOOM_STEP), _: () => zoom(1 / ZOOM_STEP), 0: fit, ArrowLeft: () => pan(-0.1), ArrowRight: () => pan(0.1) };
        if (!(event.key in keys)) return;
        event.preventDefault();
        keys[event.key]();
      });
      viewport.addEventListener(
        "wheel",
        (event) => {
          if (event.ctrlKey) {
            event.preventDefault();
            zoom(Math.exp(-event.deltaY / 300), trackFraction(event.clientX));
          } else if (Math.abs(event.deltaX) > Math.abs(event.deltaY)) {
            event.preventDefault();
            pan(event.deltaX / trackWidth());
          }
        },
        { passive: false },
      );
      /* Drag to pan (one pointer), pinch to zoom (two); a drag does not open the row under it. */
      const pointers = new Map();
      let dragged = false;
      let pinch = null;
      viewport.addEventListener("pointerdown", (event) => {
        if (event.button !== 0 || !event.target.closest(".tl-track")) return;
        pointers.set(event.pointerId, event.clientX);
        dragged = false;
        if (pointers.size === 2) {
          const [a, b] = [...pointers.values()];
          pinch = { distance: Math.abs(a - b), anchor: trackFraction((a + b) / 2) };
        }
      });
      viewport.addEventListener("pointermove", (event) => {
        if (!pointers.has(event.pointerId)) return;
        const last = pointers.get(event.pointerId);
        pointers.set(event.pointerId, event.clientX);
        if (pointers.size === 2 && pinch) {
          const [a, b] = [...pointers.values()];
          const distance = Math.abs(a - b);
          if (pinch.distance > 0 && distance > 0) zoom(distance / pinch.distance, pinch.anchor);
          pinch.distance = distance;
          dragged = true;
          return;
        }
        const dx = event.clientX - last;
        if (!dragged && Math.abs(dx) < 4) {
          pointers.set(event.pointerId, last);
          return;
        }
        if (!dragged) viewport.setPointerCapture(event.pointerId);
        dragged = true;
        pan(-dx / trackWidth());
      });
      const release = (event) => {
        pointers.delete(event.pointerId);
        if (pointers.size < 2) pinch = null;
      };
      viewport.addEventListener("pointerup", release);
      viewport.addEventListener("pointercancel", release);
      viewport.addEventListener(
        "click",
        (event) => {
          if (!dragged) return;
          dragged = false;
          event.preventDefault();
          event.stopPropagation();
        },
        true,
      );
    }

    /* A row's attributes and events, built when it is first opened. */
    const opened = (event) => {
      const details = event.target;
      if (!details.open || details.querySelector(".span-detail")) return;
      const row = rows.get(details.closest("[data-span-id]")?.dataset.spanId);
      if (row) details.append(spanDetail(row));
    };
    timelineHolder.addEventListener("toggle", opened, true);
    traceHolder.addEventListener("toggle", opened, true);

    /* ---- what the page calls ------------------------------------------------------------------- */

    fromPage();
    schedule();
    return {
      addSpans,
      /* The node details the page holds, and whether the run goes on. */
      setNodes(details, isRunning) {
        nodes = details;
        running = isRunning;
        schedule();
      },
      /* The server's partials were swapped in: take their rows, keep the view. */
      adopt() {
        fromPage();
        schedule();
      },
      count() {
        return [...rows.values()].filter((row) => !row.open).length;
      },
    };
  }

  return { mount };
})();
