// aion UI: keeps the server-rendered pages live through the JSON API (/api/v1) and sends the actions.
// No build step, no dependencies.
"use strict";

const API = "/api/v1";

function cookie(name) {
  const found = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
}

async function api(method, path, body) {
  const response = await fetch(API + path, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-Aion-CSRF": cookie("aion_csrf") },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await response.json();
  if (!response.ok) {
    const error = new Error(answer.error ? answer.error.message : "HTTP " + response.status);
    error.code = answer.error ? answer.error.code : "http_" + response.status;
    throw error;
  }
  return answer;
}

function say(text, isError) {
  const box = document.getElementById("message");
  if (!box) return;
  box.textContent = text;
  box.className = isError ? "error" : "ok";
}

function failed(error) {
  say("error[" + (error.code || "error") + "]: " + error.message, true);
}

function esc(value) {
  const span = document.createElement("span");
  span.textContent = value === null || value === undefined ? "" : String(value);
  return span.innerHTML;
}

function wid(id) {
  return "/workflows/" + encodeURIComponent(id);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// -- Workflows: statuses and counts follow without a reload --------------------------------------------------

async function followWorkflows() {
  const body = document.body;
  const query = body.dataset.query || "";
  for (;;) {
    await sleep(1000);
    try {
      const params = new URLSearchParams({ query, page_size: body.dataset.pageSize || "50" });
      if (body.dataset.pageToken) params.set("next_page_token", body.dataset.pageToken);
      const page = await api("GET", "/workflows?" + params);
      for (const run of page.workflows) {
        const row = [...document.querySelectorAll("#workflows tbody tr")].find((r) => r.dataset.workflowId === run.workflow_id);
        if (!row) continue;
        const status = row.querySelector('[data-field="status"]');
        if (status.textContent !== run.status) {
          status.textContent = run.status;
          status.className = "status status-" + run.status;
        }
        row.querySelector('[data-field="close_time"]').textContent = run.close_time || "";
      }
      const counts = await api("GET", "/count?" + new URLSearchParams({ query: (query + " GROUP BY Status").trim() }));
      document.getElementById("count-total").textContent = counts.count;
      for (const cell of document.querySelectorAll("#counts .count")) {
        cell.querySelector("b").textContent = counts.groups[cell.dataset.status] || 0;
      }
    } catch (error) {
      failed(error);
    }
  }
}

// -- A workflow: the history follows, the status and outcome update, the actions ------------------------------

function eventRow(event) {
  const fields = {};
  for (const [key, value] of Object.entries(event)) {
    if (!["type", "seq", "recorded_at", "workflow_id"].includes(key)) fields[key] = value;
  }
  const text = JSON.stringify(fields);
  const preview = text.length <= 120 ? text : text.slice(0, 119) + "…";
  const row = document.createElement("tr");
  row.className = "event";
  row.dataset.seq = event.seq;
  row.innerHTML =
    "<td>" + esc(event.seq) + "</td><td>" + esc(event.recorded_at) + '</td><td class="event-type">' + esc(event.type) +
    '</td><td><details><summary class="mono">' + esc(preview) + "</summary><pre>" +
    esc(JSON.stringify(fields, null, 2)) + "</pre></details></td>";
  return row;
}

async function refreshWorkflow(id) {
  const view = await api("GET", wid(id));
  if (view.run_id !== document.body.dataset.runId) {
    location.reload(); // a new run (reset, continue-as-new): draw everything again
    return;
  }
  const status = document.getElementById("status");
  status.textContent = view.status;
  status.className = "status status-" + view.status;
  document.body.dataset.status = view.status;
  document.getElementById("close-time").textContent = view.close_time || "";
  document.getElementById("waiting-on").textContent = view.waiting_on || "";
  const outcome = document.getElementById("outcome");
  if (view.failure && !document.getElementById("failure")) {
    outcome.innerHTML = '<h2>Failure</h2><p class="error" id="failure">' + esc(view.failure.type) + ": " +
      esc(view.failure.message) + "</p><details><summary>traceback</summary><pre>" + esc(view.failure.traceback) + "</pre></details>";
  } else if (view.status === "completed" && !document.getElementById("result")) {
    outcome.innerHTML = '<h2>Result</h2><pre id="result">' + esc(JSON.stringify(view.result, null, 2)) + "</pre>";
  }
}

async function followWorkflow() {
  const id = document.body.dataset.workflowId;
  const runId = document.body.dataset.runId;
  let after = Number(document.body.dataset.lastSeq || 0);
  const tbody = document.querySelector("#history tbody");
  for (;;) {
    try {
      const params = new URLSearchParams({ after_seq: String(after), wait: "2", run_id: runId });
      const view = await api("GET", wid(id) + "/history?" + params);
      for (const event of view.events) {
        tbody.appendChild(eventRow(event));
        after = Math.max(after, event.seq);
      }
      await refreshWorkflow(id); // what it waits on changes without new events (its process reports it)
      if (view.closed) {
        await sleep(2000); // a closed run may still be reset: look again now and then
        await refreshWorkflow(id);
      }
    } catch (error) {
      failed(error);
      await sleep(2000);
    }
  }
}

function bindWorkflowActions() {
  const id = document.body.dataset.workflowId;
  const send = document.getElementById("signal-send");
  if (!send) return;
  send.addEventListener("click", async () => {
    const name = document.getElementById("signal-name").value.trim();
    const raw = document.getElementById("signal-payload").value.trim();
    let payload = null;
    try {
      payload = raw ? JSON.parse(raw) : null;
    } catch (error) {
      say("the payload is not valid JSON: " + error.message, true);
      return;
    }
    if (!name) return say("a signal needs a name", true);
    if (!confirm("Send signal '" + name + "' to " + id + "?")) return;
    try {
      await api("POST", wid(id) + "/signal", { name, payload });
      say("signal '" + name + "' sent (durable)");
    } catch (error) {
      failed(error);
    }
  });
  for (const button of document.querySelectorAll("button.action")) {
    button.addEventListener("click", async () => {
      const action = button.dataset.action;
      const reason = document.getElementById("action-reason").value.trim() || undefined;
      const body = {};
      if (["cancel", "terminate", "pause", "reset"].includes(action)) body.reason = reason;
      if (action === "reset") {
        body.reason = reason || "reset from the UI";
        const seq = document.getElementById("reset-seq").value.trim();
        if (seq) body.to_seq = Number(seq);
      }
      if (!confirm(action[0].toUpperCase() + action.slice(1) + " workflow " + id + "?")) return;
      try {
        const answer = await api("POST", wid(id) + "/" + action, body);
        say(action + ": " + JSON.stringify(answer));
        await refreshWorkflow(id);
      } catch (error) {
        failed(error);
      }
    });
  }
}

// -- The supervision tree, from its event stream -------------------------------------------------------------

function walk(node, depth, out) {
  out.push([depth, node]);
  for (const child of node.children || []) walk(child, depth + 1, out);
  return out;
}

function bytes(value) {
  if (value === null || value === undefined) return "";
  return (value / 1048576).toFixed(1) + " MiB";
}

function drawTree(view) {
  const residency = view.residency || {};
  document.getElementById("tree-title").textContent =
    "engine pid " + view.pid + " on " + view.data_dir + "; " + residency.resident + "/" + residency.max_resident +
    " runs resident, " + residency.waiting + " waiting";
  const rows = walk(view.root, 0, []).map(([depth, node]) => {
    const workflow = node.workflow || {};
    const meta = node.meta || {};
    const workflowId = workflow.workflow_id || meta.workflow_id;
    const exit = node.last_exit || {};
    const state = (node.state || "") + (workflow.status && workflow.status !== "running" ? " (" + workflow.status + ")" : "") +
      (workflow.waiting_on ? ", waiting on " + workflow.waiting_on : "");
    return '<tr data-node-id="' + esc(node.id) + '" data-pid="' + esc(node.pid) + '" data-restarts="' + esc(node.restarts) + '">' +
      '<td style="padding-left:' + (0.3 + depth * 1.2) + 'em">' + esc(node.id) + "</td><td>" + esc(node.kind) + '</td><td class="pid">' +
      esc(node.pid) + "</td><td>" + (workflowId ? '<a href="' + wid(workflowId) + '">' + esc(workflowId) + "</a>" : "") +
      "</td><td>" + esc(state) + '</td><td class="restarts">' + esc(node.restarts === undefined ? "" : node.restarts) +
      '</td><td class="last-exit">' + esc(exit.signal || exit.kind || "") + "</td><td>" +
      esc(node.uptime === undefined || node.uptime === null ? "" : node.uptime.toFixed(1) + " s") + "</td><td>" + esc(bytes(node.memory_rss)) +
      "</td><td>" + esc(node.cpu_seconds === undefined || node.cpu_seconds === null ? "" : node.cpu_seconds.toFixed(2) + " s") + "</td></tr>";
  });
  for (const run of view.blocked || []) {
    const block = run.blocked || {};
    rows.push('<tr class="blocked"><td>blocked</td><td>run</td><td></td><td><a href="' + wid(run.workflow_id) + '">' +
      esc(run.workflow_id) + "</a></td><td>blocked (" + esc(block.cause) + "): " + esc(block.message) + "</td><td></td><td></td><td></td><td></td><td></td></tr>");
  }
  document.querySelector("#tree tbody").innerHTML = rows.join("");
  document.getElementById("tree-updated").textContent = "updated " + new Date().toISOString();
}

function followTree() {
  const source = new EventSource(API + "/tree/stream");
  source.addEventListener("tree", (message) => drawTree(JSON.parse(message.data)));
  source.addEventListener("failure", (message) => failed(JSON.parse(message.data).error));
}

// -- Schedules ------------------------------------------------------------------------------------------------

function bindSchedules() {
  for (const button of document.querySelectorAll("button.schedule-action")) {
    button.addEventListener("click", async () => {
      const id = button.closest("tr").dataset.scheduleId;
      const action = button.dataset.action;
      if (!confirm(action[0].toUpperCase() + action.slice(1) + " schedule " + id + "?")) return;
      try {
        await api("POST", "/schedules/" + encodeURIComponent(id) + "/" + action, {});
        location.reload();
      } catch (error) {
        failed(error);
      }
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.page;
  if (page === "workflows") followWorkflows();
  if (page === "workflow") {
    bindWorkflowActions();
    followWorkflow();
  }
  if (page === "tree" && document.getElementById("tree")) followTree();
  if (page === "schedules") bindSchedules();
});
