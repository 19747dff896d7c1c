// qcog-mock dashboard: keeps the parts marked data-live current, and posts the clock controls
// without reloading the page. The pages work without it (plain links and forms).
"use strict";

const REFRESH_MS = 1000;
let busy = false;

function focusKey(element) {
  return element.id ? `#${CSS.escape(element.id)}`
    : element.getAttribute("href") ? `[href="${CSS.escape(element.getAttribute("href"))}"]`
    : null;
}

async function refresh() {
  const answer = await fetch(location.href, { cache: "no-store", credentials: "same-origin" });
  if (answer.redirected && new URL(answer.url).pathname.endsWith("/login")) {
    location.assign(answer.url); // signed out (a restart): to the login form
    return;
  }
  if (!answer.ok) return;
  const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
  for (const part of document.querySelectorAll("[data-live]")) {
    const next = fresh.getElementById(part.id);
    if (!next || next.innerHTML === part.innerHTML) continue;
    // Keep what the reader has open or focused across the swap.
    const open = [...part.querySelectorAll("details[open]")].map((d) => d.id);
    const focused = part.contains(document.activeElement) ? focusKey(document.activeElement) : null;
    part.innerHTML = next.innerHTML;
    for (const id of open) document.getElementById(id)?.setAttribute("open", "");
    if (focused) part.querySelector(focused)?.focus();
  }
}

async function loop() {
  try {
    if (!document.hidden && !busy) await refresh();
  } catch (error) {
    // The server may be restarting: try again on the next tick.
  }
  setTimeout(loop, REFRESH_MS);
}

async function submitClock(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const message = document.getElementById("clock-message");
  const buttons = form.querySelectorAll("button");
  const body = new URLSearchParams(new FormData(form, event.submitter));
  busy = true;
  buttons.forEach((b) => { b.disabled = true; });
  message.textContent = "Working…";
  try {
    // getAttribute: form.action would be the buttons named "action".
    const answer = await fetch(form.getAttribute("action"), {
      method: "POST",
      body,
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    const state = await answer.json();
    message.textContent = answer.ok ? `${state.message} Now ${state.now}.` : state.detail;
    message.classList.toggle("error", !answer.ok);
  } catch (error) {
    message.textContent = "The server did not answer.";
    message.classList.add("error");
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
    busy = false;
    await refresh().catch(() => {});
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form[data-clock]")) {
    form.addEventListener("submit", submitClock);
  }
  if (document.body.hasAttribute("data-refresh")) setTimeout(loop, REFRESH_MS);
});
