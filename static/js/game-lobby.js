// Keeps the home page's list of open rooms current by polling the lobby endpoint.

import {h} from "./game-ui.js";

const root = document.querySelector("[data-lobby]");
if (root) {
  const list = root.querySelector("[data-lobby-list]");
  const empty = root.querySelector("[data-lobby-empty]");
  const every = Number(root.dataset.refreshMs) || 4000;
  let timer = null;
  let busy = false;

  const render = (rooms) => {
    list.replaceChildren(...rooms.map((room) => h("li", {class: "lobby-room", dataset: {code: room.code}},
      h("div", {class: "lobby-room__info"},
        h("span", {class: "lobby-room__host"}, room.title || "A room"),
        h("span", {class: "muted small"},
          h("span", {class: "code"}, room.code),
          ` · ${room.players}/${room.max_players} players · ${room.state === "lobby" ? "waiting" : "playing"}`)),
      h("a", {class: "button button--small", href: room.url}, "Join"))));
    empty.hidden = rooms.length > 0;
  };

  const refresh = async () => {
    clearTimeout(timer);
    timer = null;
    if (busy) return;
    busy = true;
    try {
      const response = await fetch(root.dataset.lobbyUrl, {headers: {Accept: "application/json"}});
      if (response.ok) render((await response.json()).rooms || []);
    } catch {
      // Offline for a moment: keep showing the last list and try again later.
    }
    busy = false;
    schedule();
  };

  const schedule = () => {
    // A tab in the background does not need a fresh list.
    if (timer === null && !document.hidden) timer = setTimeout(refresh, every);
  };

  document.addEventListener("visibilitychange", () => {
    if (document.hidden) {
      clearTimeout(timer);
      timer = null;
    } else {
      refresh();
    }
  });
  schedule();
}
