// Cordon web console: live lists. Every element with data-live="/live/..." (the incidents
// list, an incident's timeline, the approvals queue) follows that server-sent event stream.
// A `row` event carries {key, html}: a row the server rendered with the same code as the
// page (every value escaped there), which replaces the child with the same data-key or is
// added (on top with data-live-order="newest-first", else at the end). A `gone` event names
// the key of a row to remove. Nothing here builds markup from text.
import { localTimes } from "/assets/console.js";

function rowFrom(html) {
  const t = document.createElement("template");
  t.innerHTML = html.trim();
  return t.content.firstElementChild;
}

function place(list, key, row) {
  for (const placeholder of list.querySelectorAll(":scope > .empty")) {
    placeholder.remove();
  }
  const old = [...list.children].find((el) => el.dataset.key === key);
  if (old) {
    old.replaceWith(row);
  } else if (list.dataset.liveOrder === "newest-first") {
    list.prepend(row);
  } else {
    list.append(row);
  }
  localTimes(row);
}

function follow(list) {
  const events = new EventSource(list.dataset.live);
  events.addEventListener("row", (e) => {
    const { key, html } = JSON.parse(e.data);
    const row = rowFrom(html);
    if (row) {
      place(list, key, row);
    }
  });
  events.addEventListener("gone", (e) => {
    const old = [...list.children].find((el) => el.dataset.key === e.data);
    if (old) {
      old.remove();
    }
  });
  events.addEventListener("end", () => {
    events.close();
    window.location.assign("/login");
  });
}

document.addEventListener("DOMContentLoaded", () => {
  for (const list of document.querySelectorAll("[data-live]")) {
    follow(list);
  }
});
