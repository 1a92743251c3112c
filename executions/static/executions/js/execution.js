/* One execution: tabs, the node panel, live node colours, progress, and the run's actions. Node
   events recolour the graph, move the progress count and the timeline's open bars at once;
   span.ended adds its spans to the timeline and trace (timeline.js). The server's partials are
   re-fetched when the stream (re)connects and when the run ends, so the page always ends on the
   recorded truth, including after a dropped stream; a node event re-fetches only the node
   details (for the selected node's panel), never the timeline. Cancel, Re-run and "Retry from this node" POST JSON to the API (its
   content-type rule stands in for CSRF tokens); a re-run opens the new run's page.
   A parked run (workflows.waits) waits: node.waiting recolours its node (sleeping, waiting) and
   fetches the header that says what it waits for; Approve / Reject (an approval wait, in the
   actions and the node panel) and a wait node's "Send signal" form POST the signal, and the run's
   own events show it going on. */
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
  // The sleep, wait and subworkflow nodes' configs (dashboard/waits.py wait_nodes).
  const waitNodes = JSON.parse(document.getElementById("wait-nodes").textContent);
  const maySignal = config.dataset.maySignal === "true";
  const PARKED = ["sleeping", "waiting"];
  const goingOn = () => config.dataset.status === "running" || config.dataset.status === "waiting";
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

  function detailLink(id) {
    const link = element("a", id, "mono");
    link.href = config.dataset.detailUrl.replace("__id__", encodeURIComponent(id));
    return link;
  }

  function dueText(iso) {
    return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
  }

  /* The child execution a subworkflow node names: the one it waits for, or the one it ran
     (the same rule as templatetags/dashboard.py child_execution). */
  function childOf(detail) {
    const [kind, ...rest] = (detail.waitingFor || "").split(":");
    if (kind === "execution") return rest.join(":");
    const output = detail.output;
    if (detail.nodeType === "subworkflow" && output && typeof output.executionId === "string") return output.executionId;
    return "";
  }

  /* Approve / Reject: one group, disabled once the decision is sent (`decided`: the parked
     nodes whose decision went, until they move on). */
  const decided = new Set();
  function approvalButtons(signal, nodeId) {
    const group = element("span", undefined, "approval-actions");
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", `Decision for node ${nodeId}`);
    group.dataset.approvalNode = nodeId;
    for (const [label, approved, style] of [["Approve", "true", "btn primary"], ["Reject", "false", "btn danger"]]) {
      const button = element("button", label, style);
      button.type = "button";
      button.dataset.signal = signal;
      button.dataset.approved = approved;
      button.disabled = decided.has(nodeId);
      group.append(button);
    }
    return group;
  }

  let formCount = 0;
  function signalForm(signal, nodeId) {
    const form = element("form", undefined, "signal-form");
    form.dataset.signalForm = signal;
    form.dataset.node = nodeId;
    const id = `signal-payload-${++formCount}`;
    const label = element("label", `Send signal ${signal} with this JSON object:`, "small");
    label.htmlFor = id;
    const payload = element("textarea");
    payload.id = id;
    payload.name = "payload";
    payload.spellcheck = false;
    payload.value = "{}";
    const send = element("button", "Send signal", "btn");
    send.type = "submit";
    form.append(label, payload, send);
    return form;
  }

  /* What a parked node waits for, and what an operator can send it. */
  function waitSection(detail) {
    const box = element("div", undefined, "node-wait");
    box.dataset.status = detail.status;
    const [kind, ...rest] = (detail.waitingFor || "").split(":");
    const target = rest.join(":");
    const line = element("p");
    if (kind === "signal") {
      line.append("Waiting for signal ", element("strong", target, "mono"));
      if (detail.wakeAt) line.append(`, until ${dueText(detail.wakeAt)} at most`);
    } else if (kind === "execution") {
      line.append("Waiting for child execution ", detailLink(target));
    } else if (kind === "branches") {
      line.append("Waiting for branches ", element("span", target, "mono"));
    } else if (kind === "workflow") {
      line.append("Waiting for room to start workflow ", element("span", target, "mono"));
    } else {
      line.append(detail.wakeAt ? `Sleeping until ${dueText(detail.wakeAt)}` : "Sleeping");
    }
    box.append(line);
    if (kind === "signal" && maySignal && config.dataset.status === "waiting") {
      const wait = waitNodes[detail.nodeId] || {};
      box.append(wait.approval ? approvalButtons(target, detail.nodeId) : signalForm(target, detail.nodeId));
    }
    return box;
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
    if (PARKED.includes(detail.status)) children.push(waitSection(detail));
    const child = childOf(detail);
    if (child && !PARKED.includes(detail.status)) {
      const line = element("p", "Child execution ");
      line.append(detailLink(child));
      children.push(line);
    }
    if (detail.reused) children.push(reusedNote());
    if (detail.status === "failed" && !goingOn()) {
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
    // A payload being typed survives the panel's redraw (a live update of the same node).
    const typing = panel.querySelector(`form[data-node="${CSS.escape(detail.nodeId)}"]`);
    const typed = typing && { value: typing.elements.payload.value, focused: typing.contains(document.activeElement) };
    panel.replaceChildren(...children);
    const form = typed && panel.querySelector("form[data-signal-form]");
    if (form) {
      form.elements.payload.value = typed.value;
      if (typed.focused) form.elements.payload.focus();
    }
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

  /* A subworkflow node's link to its child, next to its box (not in it: the box is a button). */
  const SVG = "http://www.w3.org/2000/svg";
  function paintChild(id) {
    const node = graph?.querySelector(`.node-subworkflow[data-node-id="${CSS.escape(id)}"]`);
    const child = node && childOf(nodes[id]);
    if (!child) return;
    const href = config.dataset.detailUrl.replace("__id__", encodeURIComponent(child));
    let link = graph.querySelector(`a.node-child[data-child-of="${CSS.escape(id)}"]`);
    if (!link) {
      link = document.createElementNS(SVG, "a");
      link.setAttribute("class", "node-child");
      link.dataset.childOf = id;
      link.setAttribute("transform", node.getAttribute("transform"));
      const text = document.createElementNS(SVG, "text");
      const box = node.querySelector(".node-box");
      text.setAttribute("x", String(Number(box.getAttribute("width")) - 10));
      text.setAttribute("y", "58");
      text.setAttribute("text-anchor", "end");
      text.textContent = "child ↗";
      link.append(text);
      node.after(link);
    }
    link.setAttribute("href", href);
    link.setAttribute("aria-label", `Child execution ${child} of node ${id}`);
  }

  /* `changes` are merged into what the page knows of the node, or with `replace` stand for it. */
  function setNode(id, changes, replace = false) {
    const before = JSON.stringify(nodes[id]);
    nodes[id] = replace ? changes : { ...(nodes[id] || { nodeId: id }), ...changes };
    if (!PARKED.includes(nodes[id].status)) decided.delete(id);
    paint(id, nodes[id].status, Boolean(nodes[id].reused));
    paintChild(id);
    // Unchanged details keep the panel as it is (a payload being typed, a sent decision).
    if (selected === id && JSON.stringify(nodes[id]) !== before) renderPanel();
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
    timeline.setNodes(nodes, goingOn());
    renderProgress();
  }
  nodesChanged();

  /* The same control in new HTML: same element, link, id and text. */
  function sameControl(a, b) {
    return a.tagName === b.tagName && a.getAttribute("href") === b.getAttribute("href") &&
      a.id === b.id && a.textContent.trim() === b.textContent.trim();
  }

  /* A part is replaced when the server's HTML for it changed; a keyboard user on one of its
     controls stays on that control in the new HTML, never dropped to the page's top (the first
     catch-up after load swaps the header while a person may already be tabbing through it). */
  function swap(name, html) {
    const part = parts[name];
    if (part.dataset.html === html) return;
    part.dataset.html = html;
    const focused = part.contains(document.activeElement) ? document.activeElement : null;
    part.replaceChildren(c4c.fragment(html));
    if (!focused) return;
    const again = [...part.querySelectorAll(focused.tagName)].find((el) => sameControl(el, focused));
    again?.focus({ preventScroll: true });
  }

  /* The actions change with the status and with what a waiting run waits for: replaced then,
     and focus follows the button it was on (Cancel becomes Re-run), so a keyboard user is not
     dropped to the page's top. */
  function swapActions(html) {
    if (parts.actions.dataset.html === html) return;
    const first = parts.actions.dataset.html === undefined;
    parts.actions.dataset.html = html;
    const current = parts.actions.firstElementChild;
    // The first catch-up after load: the page rendered these already (no focus to move).
    if (first && current && current.outerHTML.trim() === html.trim()) return;
    const hadFocus = parts.actions.contains(document.activeElement);
    parts.actions.replaceChildren(c4c.fragment(html));
    if (hadFocus && !cancelDialog.open) parts.actions.querySelector("button")?.focus({ preventScroll: true });
  }

  /* Node events that arrive while a refresh's fetch is out. Its answer may have been read before
     they were written: a node event is sent after its write commits, so every event that arrived
     before the fetch went out is in the answer, but one that arrived meanwhile may not be. Those
     events' changes are laid over the answer's node details, so a count never steps back (4 done
     -> 3 -> 4). Where the answer is newer than such an event, the event for what it holds comes
     next on the stream (events arrive in order), so the page still ends on the newest. */
  let arriving = null;
  function nodeChanged(id, changes) {
    if (arriving) arriving[id] = { ...arriving[id], ...changes };
    setNode(id, changes);
  }

  /* The server's truth. The timeline and trace are swapped only when `whole` was asked for (a
     (re)connect, the run's end): in between, the live events keep them. */
  let whole = true;
  const refresh = c4c.coalesce(async () => {
    const swapSpans = whole;
    whole = false;
    const arrived = {};
    arriving = arrived;
    let data;
    try {
      data = await c4c.fetchJSON(config.dataset.live);
    } finally {
      arriving = null;
    }
    swap("header", data.header);
    swapActions(data.actions);
    if (swapSpans) {
      swap("timeline", data.timeline);
      swap("trace", data.trace);
      timeline.adopt();
    }
    config.dataset.status = data.status;
    for (const id of Object.keys(nodes)) if (!(id in data.nodes)) delete nodes[id];
    for (const [id, detail] of Object.entries(data.nodes)) setNode(id, { ...detail, ...arrived[id] }, true);
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
      // A sent decision's buttons stay off (see `decided`).
      button.disabled = button.closest("[data-sent]") !== null;
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
  // The button that opened the dialog may have been replaced while it was open (the run moved
  // on): focus then goes to the actions that replaced it, not to the page's top.
  cancelDialog.addEventListener("close", () => {
    if (!parts.actions.contains(document.activeElement)) {
      parts.actions.querySelector("button")?.focus({ preventScroll: true });
    }
  });
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

  /* Signals: POSTed as the API takes them; the run's events then show it going on. */
  function sendSignal(name, payload) {
    return post(config.dataset.signalUrl.replace("__signal__", encodeURIComponent(name)), payload);
  }

  function sentNote(text) {
    const note = element("p", text, "signal-sent small");
    note.setAttribute("role", "status");
    return note;
  }

  /* Approve / Reject, in the actions or the node panel: every copy of the group is disabled
     once one decision is sent, so a second press cannot send a second signal. */
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-signal][data-approved]");
    if (!button || button.disabled) return;
    const approved = button.dataset.approved === "true";
    act(button, async () => {
      await sendSignal(button.dataset.signal, { approved, by: config.dataset.user });
      const nodeId = button.closest(".approval-actions").dataset.approvalNode;
      decided.add(nodeId);
      for (const group of document.querySelectorAll(`.approval-actions[data-approval-node="${CSS.escape(nodeId)}"]`)) {
        for (const other of group.querySelectorAll("button")) other.disabled = true;
        group.dataset.sent = "true";
      }
      button.closest(".approval-actions").after(sentNote(approved ? "Approved: the run goes on." : "Rejected: the run goes on."));
      refresh();
    });
  });

  panel.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-signal-form]");
    if (!form) return;
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    act(button, async () => {
      let payload;
      try {
        payload = JSON.parse(form.elements.payload.value.trim() || "{}");
      } catch (problem) {
        throw new Error(`The payload is not JSON: ${problem.message}`);
      }
      if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
        throw new Error("The payload must be a JSON object, such as {} or {\"ok\": true}.");
      }
      await sendSignal(form.dataset.signalForm, payload);
      form.querySelector("p.signal-sent")?.remove();
      form.append(sentNote(`Signal ${form.dataset.signalForm} sent.`));
      refresh();
    });
  });

  const mine = (handler) => (data) => {
    if (data.executionId && data.executionId !== config.dataset.executionId) return;
    handler(data);
  };

  /* A node changed: drawn at once; its panel, if open, gets the stored details (its input); a
     waiting run that moves on, or a node that parks, gets its header (what it waits for). */
  const nodeEvent = (changes, always) =>
    mine((data) => {
      nodeChanged(data.nodeId, changes(data));
      nodesChanged();
      if (always || selected === data.nodeId || config.dataset.status === "waiting") refresh();
    });
  const NOT_PARKED = { wakeAt: undefined, waitingFor: undefined };

  // A finished execution with its spans saved will not change: no stream to hold open.
  if (goingOn() || config.dataset.spanCount === "0") {
    c4c.stream(
      config.dataset.stream,
      {
        "node.started": nodeEvent((data) => ({ status: "running", startTime: new Date(data.timestamp).toISOString(), endTime: undefined, ...NOT_PARKED })),
        "node.completed": nodeEvent((data) => ({ status: data.status || "completed", endTime: new Date(data.timestamp).toISOString(), output: data.output, error: data.error, ...NOT_PARKED })),
        "node.waiting": nodeEvent((data) => ({ status: data.status, wakeAt: data.wakeAt || undefined, waitingFor: data.waitingFor || undefined }), true),
        "workflow.waiting": mine(refreshWhole),
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
