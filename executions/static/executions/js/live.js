/* Shared by the live pages: an SSE connection that tells the page when to catch up, a
   scheduler that merges bursts of events into one fetch, and times that stay current. */
"use strict";

window.c4c = (() => {
  const connection = document.getElementById("connection");

  function showConnection(state, text) {
    if (!connection) return;
    connection.hidden = false;
    connection.dataset.state = state;
    connection.textContent = text;
  }

  /* Run `task` at most once per `wait` ms however many times it is asked for; a request that
     arrives while the task runs schedules one more run, so the last event is never lost. */
  function coalesce(task, wait) {
    let timer = null;
    let running = false;
    let again = false;
    async function run() {
      timer = null;
      if (running) {
        again = true;
        return;
      }
      running = true;
      try {
        await task();
      } catch (error) {
        showConnection("reconnecting", "Update failed, retrying");
        setTimeout(schedule, 2000);
      } finally {
        running = false;
        if (again) {
          again = false;
          schedule();
        }
      }
    }
    function schedule() {
      if (timer === null) timer = setTimeout(run, wait);
    }
    return schedule;
  }

  /* Open an EventSource. `onSync` runs on every (re)connect and on stream-reset: events may
     have been missed, so the page fetches the true state instead of trusting its own. */
  function stream(url, handlers, onSync) {
    const source = new EventSource(url);
    source.addEventListener("open", () => {
      showConnection("live", "Live");
      onSync();
    });
    source.addEventListener("error", () => {
      showConnection("reconnecting", "Reconnecting…");
    });
    source.addEventListener("stream-reset", onSync);
    for (const [name, handler] of Object.entries(handlers)) {
      source.addEventListener(name, (event) => {
        let data = {};
        try {
          data = event.data ? JSON.parse(event.data) : {};
        } catch (error) {
          return;
        }
        handler(data);
      });
    }
    window.addEventListener("pagehide", () => source.close());
    return source;
  }

  async function fetchJSON(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`${url} answered ${response.status}`);
    return response.json();
  }

  /* The CSRF token a POST to the API sends with a session cookie (signed-in pages carry it in
     their sign-out form; Django's csrftoken cookie otherwise); empty when auth is off. */
  function csrfToken() {
    const field = document.querySelector("[name=csrfmiddlewaretoken]");
    if (field) return field.value;
    const cookie = document.cookie.split("; ").find((part) => part.startsWith("csrftoken="));
    return cookie ? decodeURIComponent(cookie.slice("csrftoken=".length)) : "";
  }

  function fragment(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content;
  }

  const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  const units = [
    ["year", 31536000],
    ["month", 2592000],
    ["week", 604800],
    ["day", 86400],
    ["hour", 3600],
    ["minute", 60],
    ["second", 1],
  ];

  function relativeTime(date) {
    const seconds = (date.getTime() - Date.now()) / 1000;
    if (Math.abs(seconds) < 10) return "just now";
    for (const [unit, size] of units) {
      if (Math.abs(seconds) >= size || unit === "second") {
        return relative.format(Math.round(seconds / size), unit);
      }
    }
    return "";
  }

  function formatDuration(ms) {
    if (ms < 1000) return `${Math.round(ms)} ms`;
    const seconds = ms / 1000;
    if (seconds < 60) return `${seconds.toFixed(1)} s`;
    const whole = Math.round(seconds);
    const minutes = Math.floor(whole / 60);
    if (minutes < 60) return `${minutes} min ${String(whole % 60).padStart(2, "0")} s`;
    return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
  }

  function refreshTimes(root = document) {
    for (const el of root.querySelectorAll("time[data-relative]")) {
      el.textContent = relativeTime(new Date(el.dateTime));
    }
    for (const el of root.querySelectorAll("[data-elapsed-since]")) {
      el.textContent = formatDuration(Date.now() - new Date(el.dataset.elapsedSince).getTime());
    }
  }

  refreshTimes();
  setInterval(refreshTimes, 1000);

  /* A run's node progress as the list and the detail page say it: "3 of 10 done, 2 running". */
  function progressText(done, total, running) {
    return `${done} of ${total} done${running ? `, ${running} running` : ""}`;
  }

  return { coalesce, stream, fetchJSON, csrfToken, fragment, refreshTimes, formatDuration, showConnection, progressText };
})();
