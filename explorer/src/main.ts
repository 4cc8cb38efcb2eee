// The explorer's shell: hash routes (`#/stamp/AT-2026-001%2342`), the search box, and one
// page at a time in <main>. Every page is read-only.

import "./style.css";
import { ApiError } from "./api";
import { h } from "./dom";
import { classify, routeOf } from "./search";
import { accountPage } from "./pages/account";
import { blockPage } from "./pages/block";
import { genesisPage } from "./pages/genesis";
import { homePage } from "./pages/home";
import { issuePage } from "./pages/issue";
import { membershipPage } from "./pages/membership";
import { stampPage } from "./pages/stamp";
import { txPage } from "./pages/tx";

/** A page renders into `main`; it may return a function that stops its live updates. */
export type Page = (main: HTMLElement, params: string[], query: URLSearchParams) => Promise<(() => void) | void>;

const ROUTES: [RegExp, Page][] = [
  [/^\/?$/, homePage],
  [/^\/block\/(\d+)$/, blockPage],
  [/^\/tx\/([0-9a-fA-F]{64})$/, txPage],
  [/^\/issue\/([^/]+)$/, issuePage],
  [/^\/stamp\/([^/]+)$/, stampPage],
  [/^\/account\/([^/]+)$/, accountPage],
  [/^\/membership$/, membershipPage],
  [/^\/genesis$/, genesisPage],
];

const main = document.getElementById("main") as HTMLElement;
let stop: (() => void) | void;
let generation = 0;
/** The first page is where the reader starts: focus moves to <main> on later routes only. */
let first = true;

async function render(): Promise<void> {
  const current = ++generation;
  if (stop) stop();
  stop = undefined;
  const [path, queryText = ""] = location.hash.replace(/^#/, "").split("?", 2);
  const query = new URLSearchParams(queryText);
  const page = document.createElement("div");
  page.className = "page";
  main.replaceChildren(h("p", { class: "loading" }, "Loading…"));
  for (const [pattern, view] of ROUTES) {
    const match = pattern.exec(path);
    if (!match) continue;
    const params = match.slice(1).map(decodeURIComponent);
    try {
      const stopper = await view(page, params, query);
      if (current !== generation) {
        if (stopper) stopper();
        return;
      }
      stop = stopper;
    } catch (error) {
      if (current !== generation) return;
      page.replaceChildren(failure(error));
    }
    main.replaceChildren(page);
    const heading = main.querySelector("h1");
    document.title = heading ? `${heading.textContent} · Cachet explorer` : "Cachet explorer";
    if (!first) main.focus({ preventScroll: true });
    first = false;
    return;
  }
  main.replaceChildren(h("h1", {}, "Not found"), h("p", {}, `No page at ${path}.`));
}

function failure(error: unknown): HTMLElement {
  if (error instanceof ApiError) {
    const title = error.status === 404 ? "Not found" : "The node could not answer";
    return h(
      "section",
      { class: "error", role: "alert" },
      h("h1", {}, title),
      h("p", {}, error.message),
      h("p", { class: "muted" }, `code ${error.code}${error.status ? `, HTTP ${error.status}` : ""}`),
    );
  }
  return h("section", { class: "error", role: "alert" }, h("h1", {}, "Something went wrong"), h("p", {}, String(error)));
}

const form = document.getElementById("search") as HTMLFormElement;
const input = document.getElementById("search-input") as HTMLInputElement;
form.addEventListener("submit", (event) => {
  event.preventDefault();
  const target = classify(input.value);
  const route = routeOf(target);
  if (route === null) {
    main.replaceChildren(
      h("section", { class: "error", role: "alert" }, h("h1", {}, "Nothing to look up"), h("p", {}, target.kind === "none" ? target.reason : "")),
    );
    main.focus();
    return;
  }
  input.value = "";
  if (location.hash === `#${route}`) void render();
  else location.hash = route;
});

// The skip link moves the focus to the page, not to a route named "main".
document.querySelector(".skip")?.addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});

window.addEventListener("hashchange", () => void render());
void render();
