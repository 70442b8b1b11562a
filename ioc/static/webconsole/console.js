// The console's only script: refresh a list that asks for it (data-refresh) every 15 s.
// Pages work without it; it never builds HTML, it swaps in the server's rendered rows.
"use strict";
const REFRESH_MS = 15000;

function refresh(body) {
  const url = body.dataset.refresh;
  fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
    .then((r) => (r.ok && !r.redirected ? r.text() : Promise.reject(r.status)))
    .then((html) => {
      const template = document.createElement("template");
      template.innerHTML = html;  // server-rendered, autoescaped rows of this origin
      body.replaceChildren(template.content);
    })
    .catch(() => {})
    .finally(() => setTimeout(() => refresh(body), REFRESH_MS));
}

document.addEventListener("DOMContentLoaded", () => {
  for (const body of document.querySelectorAll("[data-refresh]")) {
    setTimeout(() => refresh(body), REFRESH_MS);
  }
});
