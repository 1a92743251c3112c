/* One execution: tabs, the node panel, live node colours, progress, and the run's actions. Node
   events recolour the graph, move the progress count and the timeline's open bars at once;
   span.ended adds its spans to the timeline and trace (timeline.js). The server's partials are
   re-fetched when the stream (re)connects and when the run ends, so the page always ends on the
   recorded truth, including after a dropped stream; a node event re-fetches only the node
   details (for the selected node's panel), never the timeline. Cancel, Re-run and "Retry from this node" POST JSON to the API (its
   content-type rule stands in for CSRF tokens); a re-run opens the new run's page. */
"use strict";

(() => {
  const config = document.getElementById("detail-config");
  if (!config) return;
  // The server's one glyph table (templatetags/dashboard.py STATUS_GLYPHS), rendered into the page.
  const glyphs = JSON.parse(document.getElementById("status-glyphs").textContent);
  const graph = document.querySelector("#panel-graph svg.graph");
  const panel = document.getElementById("node-panel");
  const actionError = document.getElementById("action-error");
  const cancelDialog = document.getElementById("cancel-dialog");
  const parts = {
    header: document.getElementById("execution-header"),
    actions: document.getElementById("execution-actions"),
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

  function statusBadge(name) {
    const status = element("span", "", `status status-${name}`);
    status.append(element("span", glyphs[name] || "•", "glyph"), ` ${name}`);
    status.firstChild.setAttribute("aria-hidden", "true");
    return status;
  }

  function durationText(start, end) {
    return start && end ? ` (${c4c.formatDuration(new Date(end) - new Date(start))})` : "";
  }

  /* Oldest first: status, times, the error, and when the next attempt was due. */
  function attemptList(attempts) {
    const list = element("ol", undefined, "attempts");
    list.setAttribute("aria-label", "Attempts");
    for (const attempt of attempts) {
      const item = element("li");
      item.dataset.attempt = attempt.number;
      item.dataset.status = attempt.status;
      const head = element("p", undefined, "attempt-head");
      head.append(element("strong", `Attempt ${attempt.number}`), " ", statusBadge(attempt.status));
      const times = `${timeText(attempt.startTime)} → ${attempt.endTime ? timeText(attempt.endTime) : "…"}`;
      item.append(head, element("p", times + durationText(attempt.startTime, attempt.endTime), "small mono"));
      if (attempt.error) {
        item.append(element("p", `${attempt.error.name || "Error"}: ${attempt.error.message || ""}`, "error-message small"));
      }
      if (attempt.retryAt) item.append(element("p", `Retry due ${timeText(attempt.retryAt)}`, "small muted"));
      list.append(item);
    }
    return list;
  }

  function reusedNote() {
    const note = element("p", "Reused: this node did not run in this execution; its output is the one it had in ", "reused-note");
    const original = config.dataset.rerunOf;
    if (original) {
      const link = element("a", original, "mono");
      link.href = config.dataset.detailUrl.replace("__id__", encodeURIComponent(original));
      note.append(link, ".");
    } else {
      note.append("the original run.");
    }
    return note;
  }

  function renderPanel() {
    const detail = nodes[selected];
    if (!detail) return;
    const status = statusBadge(detail.status);
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
    if (detail.reused) children.push(reusedNote());
    if (detail.status === "failed" && config.dataset.status !== "running") {
      const retry = element("button", "Retry from this node", "btn primary");
      retry.type = "button";
      retry.dataset.retryFrom = detail.nodeId;
      children.push(retry);
    }
    if (detail.attempts && detail.attempts.length) {
      children.push(element("h3", `Attempts (${detail.attempts.length})`), attemptList(detail.attempts));
    }
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
    c4cNodeLogs.show(detail.nodeId); // node_logs.js: the node's Logs section
  }

  function paint(id, status, reused) {
    const node = graph?.querySelector(`.node[data-node-id="${CSS.escape(id)}"]`);
    if (!node || (node.dataset.status === status && (node.dataset.reused === "true") === reused)) return;
    node.dataset.status = status;
    if (reused) node.dataset.reused = "true";
    else delete node.dataset.reused;
    const type = node.classList[1].replace("node-", "");
    node.setAttribute("aria-label", `${id}, ${type}, ${status}${reused ? ", reused" : ""}`);
    const glyph = node.querySelector(".node-glyph");
    const word = node.querySelector(".node-status-word");
    const mark = node.querySelector(".node-reused");
    if (glyph) glyph.textContent = glyphs[status] || "•";
    if (word) word.textContent = status;
    if (mark) mark.textContent = reused ? " (reused)" : "";
  }

  function setNode(id, changes) {
    nodes[id] = { ...(nodes[id] || { nodeId: id }), ...changes };
    paint(id, nodes[id].status, Boolean(nodes[id].reused));
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

  const timeline = c4cTimeline.mount({
    timelineHolder: parts.timeline,
    traceHolder: parts.trace,
    glyphs,
    onCount(count) {
      for (const counter of document.querySelectorAll("[data-span-counter]")) counter.textContent = count;
    },
  });

  /* "3 of 10 done, 2 running": every defined node counted once, from the node details. */
  function renderProgress() {
    const target = parts.header.querySelector("[data-progress]");
    if (!target) return;
    const all = Object.values(nodes);
    const done = all.filter((n) => n.status === "completed" || n.status === "failed").length;
    const active = all.filter((n) => n.status === "running").length;
    target.textContent = c4c.progressText(done, all.length, active);
  }

  function nodesChanged() {
    timeline.setNodes(nodes, config.dataset.status === "running");
    renderProgress();
  }
  nodesChanged();

  function swap(name, html) {
    if (parts[name].dataset.html === html) return;
    parts[name].dataset.html = html;
    parts[name].replaceChildren(c4c.fragment(html));
  }

  /* The actions change only with the status: replaced then, and focus follows the button it
     was on (Cancel becomes Re-run), so a keyboard user is not dropped to the page's top. */
  function swapActions(html, status) {
    const current = parts.actions.firstElementChild;
    if (current && current.dataset.status === status) return;
    const hadFocus = parts.actions.contains(document.activeElement);
    parts.actions.replaceChildren(c4c.fragment(html));
    if (hadFocus && !cancelDialog.open) parts.actions.querySelector("button")?.focus({ preventScroll: true });
  }

  /* The server's truth. The timeline and trace are swapped only when `whole` was asked for (a
     (re)connect, the run's end): in between, the live events keep them. */
  let whole = true;
  const refresh = c4c.coalesce(async () => {
    const swapSpans = whole;
    whole = false;
    const data = await c4c.fetchJSON(config.dataset.live);
    swap("header", data.header);
    swapActions(data.actions, data.status);
    if (swapSpans) {
      swap("timeline", data.timeline);
      swap("trace", data.trace);
      timeline.adopt();
    }
    config.dataset.status = data.status;
    for (const [id, detail] of Object.entries(data.nodes)) setNode(id, detail);
    nodes = data.nodes;
    nodesChanged();
    c4c.refreshTimes(parts.header);
  }, 250);

  function refreshWhole() {
    whole = true;
    refresh();
  }

  function showError(message) {
    actionError.textContent = message;
    actionError.hidden = !message;
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": c4c.csrfToken() },
      body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new Error(data && data.error ? data.error : `The server answered ${response.status}.`);
    return data;
  }

  /* One request per press: the button is disabled (and says it is busy) until the answer. */
  async function act(button, task) {
    if (button.disabled) return;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    showError("");
    try {
      await task();
    } catch (problem) {
      showError(problem.message);
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  }

  async function rerun(fromNode) {
    const data = await post(config.dataset.rerunUrl, fromNode ? { fromNode } : {});
    window.location.assign(config.dataset.detailUrl.replace("__id__", encodeURIComponent(data.executionId)));
  }

  parts.actions.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    if (button.dataset.action === "cancel") {
      showError("");
      cancelDialog.showModal();
    } else if (button.dataset.action === "rerun") {
      act(button, () => rerun(null));
    }
  });
  cancelDialog.querySelector("[data-cancel-keep]").addEventListener("click", () => cancelDialog.close());
  const confirmCancel = cancelDialog.querySelector("[data-cancel-confirm]");
  confirmCancel.addEventListener("click", () =>
    act(confirmCancel, async () => {
      try {
        await post(config.dataset.cancelUrl, {});
      } finally {
        // Refused or not, the page catches up with what is stored (a run that just ended).
        cancelDialog.close();
        refreshWhole();
      }
    }),
  );
  panel.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-retry-from]");
    if (button) act(button, () => rerun(button.dataset.retryFrom));
  });

  const mine = (handler) => (data) => {
    if (data.executionId && data.executionId !== config.dataset.executionId) return;
    handler(data);
  };

  /* A node changed: drawn at once; its panel, if open, gets the stored details (its input). */
  const nodeEvent = (changes) =>
    mine((data) => {
      setNode(data.nodeId, changes(data));
      nodesChanged();
      if (selected === data.nodeId) refresh();
    });

  // A finished execution with its spans saved will not change: no stream to hold open.
  if (config.dataset.status === "running" || config.dataset.spanCount === "0") {
    c4c.stream(
      config.dataset.stream,
      {
        "node.started": nodeEvent((data) => ({ status: "running", startTime: new Date(data.timestamp).toISOString(), endTime: undefined })),
        "node.completed": nodeEvent((data) => ({ status: data.status || "completed", endTime: new Date(data.timestamp).toISOString(), output: data.output, error: data.error })),
        "span.ended": mine((data) => timeline.addSpans(data.spans)),
        "node.log": mine((data) => c4cNodeLogs.add(data)),
        "workflow.completed": mine(refreshWhole),
        "workflow.failed": mine(refreshWhole),
        "workflow.result": mine(refreshWhole),
      },
      refreshWhole,
    );
  }
})();
