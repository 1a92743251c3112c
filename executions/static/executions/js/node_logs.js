/* The node panel's Logs section: what the selected node's procedure logged, every run and
   attempt of it, with time and level; live lines are appended as node.log events arrive.

   execution.js calls c4cNodeLogs.show(nodeId) each time it has drawn the panel, and
   c4cNodeLogs.add(event) for each node.log of this execution. A node's lines are fetched once
   from GET /workflow/executions/<id>/nodes/<nodeId>/logs (page after page) and kept here;
   events and fetches are merged by line id, so a line never shows twice. The markup comes
   from the _node_logs.html templates: no inline script or style (CSP). */
"use strict";

window.c4cNodeLogs = (() => {
  const config = document.getElementById("node-logs-config");
  const section = document.getElementById("node-logs-template");
  const row = document.getElementById("node-log-line-template");
  const panel = document.getElementById("node-panel");
  const known = new Map(); // nodeId -> { lines: [], ids: Set, fetched: Promise | null }
  let shown = null; // { nodeId, list, count, empty }

  function entry(nodeId) {
    if (!known.has(nodeId)) known.set(nodeId, { lines: [], ids: new Set(), fetched: null });
    return known.get(nodeId);
  }

  function timeText(iso) {
    const fields = { hour: "2-digit", minute: "2-digit", second: "2-digit", fractionalSecondDigits: 3, hour12: false };
    return new Date(iso).toLocaleTimeString(undefined, fields);
  }

  function lineElement(line, attempts) {
    const item = row.content.firstElementChild.cloneNode(true);
    const level = (line.level || "INFO").toLowerCase();
    item.dataset.level = level;
    item.dataset.lineId = line.id;
    if (line.dropped) item.classList.add("log-dropped");
    const time = item.querySelector("[data-log-time]");
    time.dateTime = line.time;
    time.textContent = timeText(line.time);
    const badge = item.querySelector("[data-log-level]");
    badge.textContent = line.level;
    badge.classList.add(`level-${level}`);
    if (attempts) {
      const attempt = item.querySelector("[data-log-attempt]");
      attempt.textContent = `#${line.visit}.${line.attempt}`;
      attempt.title = `Run ${line.visit} of the node, attempt ${line.attempt}`;
      attempt.hidden = false;
    }
    item.querySelector("[data-log-message]").textContent = line.message;
    return item;
  }

  /* Lines in id order; only the new ones are drawn, and the list follows the newest line
     unless the reader scrolled up. */
  function merge(nodeId, lines) {
    const kept = entry(nodeId);
    const fresh = lines.filter((line) => !kept.ids.has(line.id));
    if (!fresh.length) return;
    const last = kept.lines.length ? kept.lines[kept.lines.length - 1].id : 0;
    const inOrder = fresh.every((line, i) => line.id > (i ? fresh[i - 1].id : last));
    for (const line of fresh) kept.ids.add(line.id);
    kept.lines.push(...fresh);
    if (!inOrder) kept.lines.sort((a, b) => a.id - b.id);
    if (shown && shown.nodeId === nodeId) draw(kept, inOrder ? fresh : null);
  }

  function draw(kept, fresh) {
    const { list, count, empty } = shown;
    const attempts = kept.lines.some((line) => line.visit > 1 || line.attempt > 1);
    const atEnd = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
    if (fresh && !attempts) list.append(...fresh.map((line) => lineElement(line, false)));
    else list.replaceChildren(...kept.lines.map((line) => lineElement(line, attempts)));
    count.textContent = kept.lines.length;
    empty.hidden = kept.lines.length > 0;
    list.hidden = kept.lines.length === 0;
    if (atEnd) list.scrollTop = list.scrollHeight;
  }

  async function fetchAll(nodeId) {
    const base = config.dataset.url.replace("__node__", encodeURIComponent(nodeId));
    let after = 0;
    for (;;) {
      const page = await c4c.fetchJSON(`${base}?after=${after}&limit=1000`);
      merge(nodeId, page.lines);
      if (page.nextAfter === null) return;
      after = page.nextAfter;
    }
  }

  function show(nodeId) {
    if (!config || !panel) return;
    const part = section.content.firstElementChild.cloneNode(true);
    panel.append(part);
    shown = {
      nodeId,
      list: part.querySelector("[data-log-lines]"),
      count: part.querySelector("[data-log-count]"),
      empty: part.querySelector("[data-log-empty]"),
    };
    const kept = entry(nodeId);
    draw(kept, null);
    if (!kept.fetched) {
      kept.fetched = fetchAll(nodeId).catch(() => {
        kept.fetched = null; // tried again the next time the node is shown
        if (shown && shown.nodeId === nodeId) shown.empty.textContent = "The logs could not be read.";
      });
    }
  }

  function add(event) {
    if (event.lines && event.lines.length) merge(event.nodeId, event.lines);
  }

  return { show, add };
})();
