// Cordon web console: the only script, served from the controller (no inline script: the
// Content-Security-Policy forbids it). It shows times in the browser's time zone and keeps
// the overview up to date from the server-sent events of /live/overview. Text goes into the
// page with textContent only, never as HTML.
// A module (strict, in its own scope); incidents.js imports localTimes from it.

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const UNITS = [
  ["day", 86400000],
  ["hour", 3600000],
  ["minute", 60000],
  ["second", 1000],
];

// "3 minutes ago", "in 2 hours": the largest unit that fits.
function ago(ms) {
  const delta = ms - Date.now();
  for (const [unit, size] of UNITS) {
    if (Math.abs(delta) >= size || unit === "second") {
      return relative.format(Math.round(delta / size), unit);
    }
  }
  return "";
}

// Every <time data-ms> in the browser's time zone, with how long ago it was.
export function localTimes(root) {
  for (const t of root.querySelectorAll("time[data-ms]")) {
    const ms = Number(t.dataset.ms);
    if (ms > 0) {
      t.textContent = `${new Date(ms).toLocaleString()} (${ago(ms)})`;
      t.title = new Date(ms).toISOString();
    }
  }
}

// Buttons with data-copy put their value on the clipboard and say so.
function copyButtons() {
  document.addEventListener("click", (e) => {
    const b = e.target.closest("button[data-copy]");
    if (!b) {
      return;
    }
    navigator.clipboard.writeText(b.dataset.copy).then(
      () => flash(b, "Copied"),
      () => flash(b, "Copy failed"),
    );
  });
}

function flash(button, text) {
  const was = button.textContent;
  button.textContent = text;
  setTimeout(() => {
    button.textContent = was;
  }, 1500);
}

function setText(id, value) {
  const el = document.getElementById(id);
  if (el) {
    el.textContent = String(value);
  }
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  if (cls) {
    td.className = cls;
  }
  td.textContent = text;
  row.appendChild(td);
  return td;
}

function link(parent, href, text) {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = text;
  parent.appendChild(a);
}

function alertRow(a) {
  const tr = document.createElement("tr");
  const when = document.createElement("time");
  when.dataset.ms = String(a.at_ms);
  when.dateTime = new Date(a.at_ms).toISOString();
  cell(tr, "").appendChild(when);
  cell(tr, a.level);
  link(cell(tr, ""), `/incidents/${encodeURIComponent(a.incident_id)}`, a.title);
  link(cell(tr, "", "id"), `/agents/${encodeURIComponent(a.agent_id)}`, a.agent_id);
  cell(tr, String(a.count));
  return tr;
}

function showOverview(o) {
  setText("agents_online", o.agents_online);
  setText("agents_offline", o.agents_offline);
  setText("agents_isolated", o.agents_isolated);
  setText("pending_approvals", o.pending_approvals);
  setText("agents_degraded", o.agents_degraded);
  setText("events_per_sec", o.events_per_sec.toFixed(1));
  for (const [severity, n] of o.open_incidents) {
    const dd = document.querySelector(`#open_incidents dd[data-severity="${CSS.escape(severity)}"]`);
    if (dd) {
      dd.textContent = String(n);
    }
  }
  const body = document.getElementById("latest_alerts");
  if (body) {
    body.replaceChildren(...o.latest_alerts.map(alertRow));
    localTimes(body);
  }
}

function follow() {
  if (!document.getElementById("overview")) {
    return;
  }
  const events = new EventSource("/live/overview");
  events.addEventListener("overview", (e) => showOverview(JSON.parse(e.data)));
  events.addEventListener("end", () => {
    events.close();
    window.location.assign("/login");
  });
  events.addEventListener("error", () => {
    if (events.readyState === EventSource.CLOSED) {
      window.location.assign("/login");
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  copyButtons();
  follow();
  setInterval(() => localTimes(document), 30000);
});
