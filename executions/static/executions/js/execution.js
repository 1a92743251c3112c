/* One execution: tabs, the node panel, and live node colours. Node events recolour the graph
   at once; then the server's partials (header, timeline, trace, node details) are re-fetched
   so the page always ends on the recorded truth, including after a dropped stream. */
"use strict";

(() => {
  const config = document.getElementById("detail-config");
  if (!config) return;
  // The server's one glyph table (templatetags/dashboard.py STATUS_GLYPHS), rendered into the page.
  const glyphs = JSON.parse(document.getElementById("status-glyphs").textContent);
  const graph = document.querySelector("#panel-graph svg.graph");
  const panel = document.getElementById("node-panel");
  const parts = {
    header: document.getElementById("execution-header"),
    timeline: document.getElementById("timeline"),
    trace: document.getElementById("trace"),
  };
  let nodes = JSON.parse(document.getElementById("node-details").textContent);
  let selected = null;

  /* Tabs: one tab stop, arrow keys move between tabs (WAI-ARIA tabs pattern). */
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  function selectTab(tab, focus) {
    for (const other of tabs) {
      const active = other === tab;
      other.setAttribute("aria-selected", String(active));
      other.tabIndex = active ? 0 : -1;
      document.getElementById(other.getAttribute("aria-controls")).hidden = !active;
    }
    if (focus) tab.focus();
    history.replaceState(null, "", `#${tab.id.replace("tab-", "")}`);
  }
  for (const tab of tabs) {
    tab.addEventListener("click", () => selectTab(tab, false));
    tab.addEventListener("keydown", (event) => {
      const index = tabs.indexOf(tab);
      const moves = {
        ArrowRight: (index + 1) % tabs.length,
        ArrowLeft: (index - 1 + tabs.length) % tabs.length,
        Home: 0,
        End: tabs.length - 1,
      };
      if (event.key in moves) {
        event.preventDefault();
        selectTab(tabs[moves[event.key]], true);
      }
    });
  }
  const initial = document.getElementById(`tab-${window.location.hash.slice(1)}`);
  if (initial && tabs.includes(initial)) selectTab(initial, false);

  function element(tag, text, className) {
    const el = document.createElement(tag);
    if (text !== undefined) el.textContent = text;
    if (className) el.className = className;
    return el;
  }

  function json(value) {
    return element("pre", JSON.stringify(value, null, 2));
  }

  function timeText(iso) {
    // Naming any field drops the defaults, so hours, minutes and seconds are all spelled out.
    const fields = { hour: "2-digit", minute: "2-digit", second: "2-digit", fractionalSecondDigits: 3, hour12: false };
    return iso ? new Date(iso).toLocaleTimeString(undefined, fields) : "—";
  }

  function renderPanel() {
    const detail = nodes[selected];
    if (!detail) return;
    const status = element("span", "", `status status-${detail.status}`);
    status.append(element("span", glyphs[detail.status] || "•", "glyph"), ` ${detail.status}`);
    status.firstChild.setAttribute("aria-hidden", "true");
    const facts = element("dl");
    const rows = [
      ["Type", detail.nodeType],
      ["Procedure", detail.procedureName || "—"],
      ["Started", timeText(detail.startTime)],
      ["Ended", timeText(detail.endTime)],
      ["Duration", detail.duration === null || detail.duration === undefined ? "—" : c4c.formatDuration(detail.duration)],
    ];
    for (const [label, value] of rows) facts.append(element("dt", label), element("dd", value));
    const children = [element("h2", detail.nodeId), status, facts];
    if (detail.error) {
      const box = element("div", undefined, "error-box");
      box.append(element("h3", detail.error.name || "Error"), element("p", detail.error.message || "", "error-message"));
      if (detail.error.stack) box.append(element("pre", detail.error.stack, "stack"));
      children.push(box);
    }
    if (detail.input !== undefined && detail.input !== null) children.push(element("h3", "Input"), json(detail.input));
    if (detail.output !== undefined && detail.output !== null) children.push(element("h3", "Output"), json(detail.output));
    if (detail.status === "pending" || detail.status === "skipped") {
      children.push(element("p", detail.status === "pending" ? "Not started yet." : "Not run in this execution.", "muted"));
    }
    panel.replaceChildren(...children);
  }

  function paint(id, status) {
    const node = graph?.querySelector(`.node[data-node-id="${CSS.escape(id)}"]`);
    if (!node || node.dataset.status === status) return;
    node.dataset.status = status;
    node.setAttribute("aria-label", `${id}, ${node.classList[1].replace("node-", "")}, ${status}`);
    const glyph = node.querySelector(".node-glyph");
    const word = node.querySelector(".node-status-word");
    if (glyph) glyph.textContent = glyphs[status] || "•";
    if (word) word.textContent = status;
  }

  function setNode(id, changes) {
    nodes[id] = { ...(nodes[id] || { nodeId: id }), ...changes };
    paint(id, nodes[id].status);
    if (selected === id) renderPanel();
  }

  function select(node) {
    graph.querySelector(".node.selected")?.classList.remove("selected");
    node.classList.add("selected");
    selected = node.dataset.nodeId;
    renderPanel();
  }
  graph?.addEventListener("click", (event) => {
    const node = event.target.closest(".node");
    if (node) select(node);
  });
  graph?.addEventListener("keydown", (event) => {
    const node = event.target.closest(".node");
    if (node && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      select(node);
    }
  });

  /* A timeline row shows the same attributes and events as its trace row: copy them on open
     rather than sending every span's details twice. */
  parts.timeline.addEventListener(
    "toggle",
    (event) => {
      const row = event.target;
      if (!row.open || row.querySelector(".span-detail")) return;
      const source = parts.trace.querySelector(
        `.trace-row[data-span-id="${CSS.escape(row.dataset.spanId)}"] .span-detail`,
      );
      if (source) row.append(source.cloneNode(true));
    },
    true,
  );

  function swap(name, html) {
    if (parts[name].dataset.html === html) return;
    parts[name].dataset.html = html;
    parts[name].replaceChildren(c4c.fragment(html));
  }

  const refresh = c4c.coalesce(async () => {
    const data = await c4c.fetchJSON(config.dataset.live);
    swap("header", data.header);
    swap("timeline", data.timeline);
    swap("trace", data.trace);
    for (const [id, detail] of Object.entries(data.nodes)) setNode(id, detail);
    nodes = data.nodes;
    config.dataset.status = data.status;
    const count = parts.timeline.querySelector("[data-span-count]")?.dataset.spanCount || "0";
    for (const counter of document.querySelectorAll("[data-span-counter]")) counter.textContent = count;
    c4c.refreshTimes(parts.header);
  }, 250);

  const mine = (handler) => (data) => {
    if (data.executionId && data.executionId !== config.dataset.executionId) return;
    handler(data);
    refresh();
  };

  // A finished execution with its spans saved will not change: no stream to hold open.
  if (config.dataset.status === "running" || config.dataset.spanCount === "0") {
    c4c.stream(
      config.dataset.stream,
      {
        "node.started": mine((data) => setNode(data.nodeId, { status: "running", startTime: new Date(data.timestamp).toISOString() })),
        "node.completed": mine((data) => setNode(data.nodeId, { status: data.status || "completed", output: data.output, error: data.error })),
        "workflow.completed": mine(() => {}),
        "workflow.failed": mine(() => {}),
        "workflow.result": mine(() => {}),
      },
      refresh,
    );
  }
})();
