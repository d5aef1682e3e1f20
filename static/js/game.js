// The room page: canvas, live guesses, players, timer, results and leaderboard,
// all driven by the room's WebSocket (see game-connection.js and docs/protocol.md).

import {bindPadControls, DrawingPad, renderDrawing, throttle} from "./drawing-pad.js";
import {GameConnection} from "./game-connection.js";
import {h, percent, renderBars, resetBars} from "./game-ui.js";

const OPT_OUT_KEY = "digit-game-opt-out";
// About ten live guesses a second, as the protocol asks.
const DRAW_EVERY_MS = 100;
// A drawing still unanswered after this long no longer holds the next one back.
const ANSWER_TIMEOUT_MS = 5000;

const config = JSON.parse(document.getElementById("room-config").textContent);
const root = document.querySelector("[data-room]");
const $ = (selector) => root.querySelector(selector);

const ui = {
  roundLabel: document.querySelector("[data-round-label]"),
  connection: document.querySelector("[data-connection]"),
  targetDigit: $("[data-target-digit]"),
  targetLabel: $("[data-target-label]"),
  targetText: $("[data-target-text]"),
  guessInline: $("[data-guess-inline]"),
  timer: $("[data-timer]"),
  timerFill: $("[data-timer-fill]"),
  overlay: $("[data-overlay]"),
  done: $("[data-done]"),
  hostControls: $("[data-host-controls]"),
  startRounds: $("[data-start-rounds]"),
  start: $("[data-start]"),
  waitHost: $("[data-wait-host]"),
  status: $("[data-status]"),
  results: $("[data-results]"),
  resultsTitle: $("[data-results-title]"),
  resultsGrid: $("[data-results-grid]"),
  nextRound: $("[data-next-round]"),
  final: $("[data-final]"),
  leaderboard: $("[data-leaderboard]"),
  playAgain: $("[data-play-again]"),
  playAgainWait: $("[data-play-again-wait]"),
  guessDigit: $("[data-guess-digit]"),
  guessNote: $("[data-guess-note]"),
  bars: $("[data-bars]"),
  players: $("[data-players]"),
  finishedCount: $("[data-finished-count]"),
  rule: $("[data-rule]"),
  optOut: $("[data-opt-out]"),
  myName: $("[data-my-name]"),
  leave: $("[data-leave]"),
  copyLink: $("[data-copy-link]"),
  shareUrl: $("[data-share-url]"),
  settings: $("[data-room-settings]"),
  settingsSeconds: $("[data-settings-seconds]"),
  settingsPlayers: $("[data-settings-players]"),
  settingsPrivate: $("[data-settings-private]"),
  settingsSave: $("[data-settings-save]"),
  settingsLine: document.querySelector("[data-settings-line]"),
  privateBadge: document.querySelector("[data-private-badge]"),
  rename: document.querySelector("[data-rename]"),
  renameReason: document.querySelector("[data-rename-reason]"),
};

// Join refusals about the name: the player picks another one (a page form).
const NAME_ERRORS = ["bad_name", "name_taken", "name_reserved"];

const game = {
  me: null, // {id, name, host, opt_out}
  room: config.snapshot, // the latest `room` snapshot
  gameId: null,
  round: 0,
  target: null,
  endsAt: null, // server clock, ms
  seconds: config.snapshot?.settings?.seconds || 20,
  roundStartLocal: null,
  finished: false, // my round is over
  seq: 0,
  shownSeq: -1,
  // At most one drawing waits for its guess: a busy server gets fewer, newer
  // drawings instead of a queue of stale ones, and answers sooner.
  unsent: false, // the pad changed since the last drawing went out
  awaiting: null, // seq of the drawing waiting for its guess
  awaitingSince: 0,
  lastRoundEnd: null,
  leaving: false,
};

// -- preferences --------------------------------------------------------------

function storedOptOut() {
  try {
    return localStorage.getItem(OPT_OUT_KEY) === "1";
  } catch {
    return false;
  }
}

ui.optOut.checked = storedOptOut();
ui.optOut.addEventListener("change", () => {
  try {
    localStorage.setItem(OPT_OUT_KEY, ui.optOut.checked ? "1" : "0");
  } catch {
    // Not remembered across visits, but still sent for this one.
  }
  connection.send({type: "opt_out", value: ui.optOut.checked});
  say(ui.optOut.checked ? "Your drawings will not be kept." : "Your drawings will be kept to train the model.");
});

// -- the canvas ---------------------------------------------------------------

const pad = new DrawingPad($("[data-pad]"), {
  lineWidth: 16,
  onChange: (drawing, reason) => {
    ui.done.disabled = !canDraw() || drawing.strokes.length === 0;
    if (!canDraw() || drawing.strokes.length === 0) {
      sendDrawing.cancel();
      game.unsent = false;
      if (drawing.strokes.length === 0) showNoGuess();
      return;
    }
    game.unsent = true;
    sendDrawing();
    if (reason === "end") sendDrawing.flush();
  },
});
bindPadControls(pad, root);
pad.setEnabled(false);

function canDraw() {
  return game.room?.state === "playing" && !game.finished && game.round > 0;
}

// The drawing is read when the message goes out, so it is always the latest.
function sendLatest({force = false} = {}) {
  if (!canDraw() || pad.isEmpty() || !game.unsent) return;
  const waiting = game.awaiting !== null
    && performance.now() - game.awaitingSince < ANSWER_TIMEOUT_MS;
  if (waiting && !force) return; // goes out when the guess comes back
  const drawing = pad.drawing;
  // Point times count from the round's start, as the protocol asks.
  const shift = game.roundStartLocal !== null && pad.startedAt !== null
    ? Math.max(0, pad.startedAt - game.roundStartLocal) : 0;
  if (shift) {
    for (const stroke of drawing.strokes) for (const point of stroke) point[2] += shift;
  }
  game.seq += 1;
  if (connection.send({type: "draw", round: game.round, seq: game.seq, drawing})) {
    game.unsent = false;
    game.awaiting = game.seq;
    game.awaitingSince = performance.now();
  }
}

const sendDrawing = throttle(() => sendLatest(), DRAW_EVERY_MS);

// The server answered the drawing waiting (a guess, or a refusal without seq).
function answered(seq) {
  if (game.awaiting === null || (seq != null && seq < game.awaiting)) return;
  game.awaiting = null;
  if (game.unsent) sendDrawing();
}

function resetSending() {
  sendDrawing.cancel();
  game.unsent = false;
  game.awaiting = null;
}

ui.done.addEventListener("click", () => {
  if (!canDraw()) return;
  // The finished drawing goes out even while an older one waits for its guess.
  sendDrawing.cancel();
  sendLatest({force: true});
  connection.send({type: "done", round: game.round});
  ui.done.disabled = true;
});

// -- the connection -----------------------------------------------------------

const wsUrl = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}${config.wsPath}`;
const connection = new GameConnection({
  url: wsUrl,
  code: config.code,
  name: config.name,
  optOut: () => ui.optOut.checked,
  onMessage: handle,
  onState: showConnection,
});

function showConnection({state, retryAt, reason, code}) {
  root.dataset.connectionState = state;
  const badge = ui.connection;
  badge.classList.remove("badge--good", "badge--warn", "badge--bad");
  clearInterval(showConnection.countdown);
  if (state === "connected") {
    badge.classList.add("badge--good");
    badge.textContent = "connected";
  } else if (state === "waiting") {
    badge.classList.add("badge--warn");
    const tick = () => {
      const left = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
      badge.textContent = left ? `offline · retrying in ${left} s` : "reconnecting…";
    };
    tick();
    showConnection.countdown = setInterval(tick, 500);
  } else if (state === "closed") {
    badge.classList.add("badge--bad");
    badge.textContent = "disconnected";
    pad.setEnabled(false);
    if (game.leaving) {
      location.href = config.homeUrl;
      return;
    }
    say(reason || "Disconnected.", true);
    if (reason) showOverlay(reason);
    if (code === 4010) {
      ui.status.append(" ", h("button", {type: "button", class: "button--small", onclick: () => {
        say("");
        connection.attempt = 0;
        connection.connect();
      }}, "Play in this tab"));
    }
  } else {
    badge.classList.add("badge--warn");
    badge.textContent = state === "reconnecting" ? "reconnecting…" : "connecting…";
  }
}

const handlers = {
  welcome(message) {
    game.me = message.you;
    ui.myName.textContent = message.you.name;
    if (message.you.opt_out !== ui.optOut.checked) {
      connection.send({type: "opt_out", value: ui.optOut.checked});
    }
    say(message.rejoined ? "Reconnected to your seat." : "");
    applyRoom(message.room);
    // A drawing made while offline gets its guess now.
    game.awaiting = null;
    if (canDraw() && !pad.isEmpty()) {
      game.unsent = true;
      sendDrawing();
    }
  },
  room(message) {
    applyRoom(message);
  },
  round_start(message) {
    startRound(message);
  },
  guess(message) {
    if (message.round !== game.round) return;
    answered(message.seq);
    if ((message.seq ?? 0) < game.shownSeq) return;
    game.shownSeq = message.seq ?? game.shownSeq;
    showGuess(message.digit, message.probabilities, message.target_probability);
    if (message.reached) finishMine(`Recognised! The model is ${percent(message.target_probability)} sure.`);
  },
  player_finished(message) {
    if (message.player === game.me?.id && message.round === game.round) {
      const why = {
        reached: "Recognised!",
        done: "Done.",
        time: "Time is up.",
        disconnected: "Your round ended while you were offline.",
        left: "You left.",
        kicked: "You were removed by the host.",
      }[message.reason] || "Your round is over.";
      finishMine(`${why} +${message.points} points`);
    }
    markFinished(message.player);
  },
  round_end(message) {
    showRoundEnd(message);
  },
  game_over(message) {
    showGameOver(message);
  },
  error(message) {
    if (message.for === "join" && NAME_ERRORS.includes(message.code)) {
      askForAnotherName(message.message || message.code);
      return;
    }
    if (message.for === "draw") answered(null);
    // A draw after the round ended is expected now and then; nothing to show.
    if (["not_playing", "wrong_round", "already_finished"].includes(message.code)
      && message.for === "draw") return;
    say(message.message || message.code, true);
  },
};

function handle(message) {
  handlers[message.type]?.(message);
}

// -- applying server state ----------------------------------------------------

function applyRoom(room) {
  const previous = game.room;
  game.room = room;
  game.seconds = room.settings?.seconds || game.seconds;
  root.dataset.state = room.state;
  if (room.rule) ui.rule.textContent = room.rule;

  const me = room.players.find((p) => p.id === game.me?.id);
  if (me) game.me = {...game.me, host: me.host, name: me.name, opt_out: me.opt_out};

  if (room.state === "playing") {
    // Reconnected in the middle of a round: catch up without a round_start.
    if (room.round !== game.round || room.game !== game.gameId) {
      startRound({game: room.game, round: room.round, rounds: room.rounds, target: room.target,
        ends_at: room.ends_at, seconds: game.seconds});
    }
    if (me?.finished && !game.finished) finishMine("Your round is over.");
    game.endsAt = room.ends_at;
  } else {
    if (room.state === "lobby") {
      game.round = 0;
      showOverlay(me?.host ? "Start the game when everyone is here" : "Waiting for the host to start the game");
      ui.targetText.textContent = "Waiting for the game to start";
    }
    if (room.state === "results") game.endsAt = room.ends_at;
    if (room.state === "finished" || room.state === "lobby") game.endsAt = null;
    pad.setEnabled(false);
    ui.done.disabled = true;
  }

  ui.roundLabel.textContent = room.round ? `Round ${room.round} of ${room.rounds}` : "Lobby";
  renderSettings(room, me);
  renderPlayers(room);
  renderHostControls(room, me);
  if (previous?.state !== room.state && room.state === "playing") ui.final.hidden = true;
}

function startRound(message) {
  // The `room` snapshot and `round_start` both announce a round; start it once.
  if (message.game === game.gameId && message.round === game.round) {
    game.endsAt = message.ends_at;
    return;
  }
  game.gameId = message.game;
  game.round = message.round;
  game.target = message.target;
  game.endsAt = message.ends_at;
  game.seconds = message.seconds || game.seconds;
  game.roundStartLocal = message.ends_at - game.seconds * 1000 - connection.offset;
  game.finished = false;
  game.seq = 0;
  game.shownSeq = -1;
  if (game.room) game.room = {...game.room, state: "playing", round: message.round, target: message.target};
  root.dataset.state = "playing";
  root.dataset.round = String(message.round);
  root.dataset.finished = "false";
  resetSending();
  pad.clear();
  pad.setEnabled(true);
  ui.done.disabled = true;
  ui.targetDigit.textContent = String(message.target);
  ui.targetLabel.textContent = `Round ${message.round} of ${message.rounds}`;
  ui.targetText.textContent = `Draw a ${message.target}`;
  ui.roundLabel.textContent = `Round ${message.round} of ${message.rounds}`;
  ui.results.hidden = true;
  ui.final.hidden = true;
  hideOverlay();
  showNoGuess();
  say("");
}

function finishMine(text) {
  game.finished = true;
  resetSending();
  pad.setEnabled(false);
  ui.done.disabled = true;
  showOverlay(text, true);
  root.dataset.finished = "true";
}

function markFinished(playerId) {
  const item = ui.players.querySelector(`[data-player="${CSS.escape(playerId)}"]`);
  if (item && !item.querySelector("[data-finished-badge]")) {
    item.querySelector(".player__name").append(
      h("span", {class: "badge badge--good", dataset: {finishedBadge: ""}}, "✓ done"));
  }
}

// -- rendering ----------------------------------------------------------------

function renderPlayers(room) {
  const showFinished = room.state === "playing" || room.state === "results";
  const present = room.players.filter((p) => !p.gone);
  const done = present.filter((p) => p.finished).length;
  ui.finishedCount.textContent = room.state === "playing" ? `· ${done} of ${present.length} finished` : "";
  ui.players.replaceChildren(...room.players.map((p) => {
    const badges = [];
    if (p.id === game.me?.id) badges.push(h("span", {class: "badge"}, "you"));
    if (p.host) badges.push(h("span", {class: "badge badge--accent"}, "host"));
    if (p.gone) badges.push(h("span", {class: "badge"}, "left"));
    else if (!p.connected) badges.push(h("span", {class: "badge badge--warn"}, "reconnecting"));
    if (showFinished && p.finished && !p.gone) {
      badges.push(h("span", {class: "badge badge--good", dataset: {finishedBadge: ""}}, "✓ done"));
    }
    if (game.me?.host && p.id !== game.me.id && !p.gone) {
      badges.push(h("button", {
        type: "button", class: "button--ghost button--small", dataset: {kick: p.id},
        "aria-label": `Remove ${p.name} from the room`,
        onclick: () => {
          if (window.confirm(`Remove ${p.name} from the room? They cannot come back.`)) {
            connection.send({type: "kick", player: p.id});
          }
        },
      }, "Remove"));
    }
    return h("li", {
      class: `player${p.gone ? " is-gone" : ""}${p.id === game.me?.id ? " is-me" : ""}`,
      dataset: {player: p.id},
    },
    h("span", {class: "player__name"}, h("span", {}, p.name), ...badges),
    h("span", {class: "player__score", "aria-label": `${p.score} points`}, String(p.score)));
  }));
}

function renderHostControls(room, me) {
  const between = room.state === "lobby" || room.state === "finished";
  const isHost = Boolean(me?.host);
  ui.hostControls.hidden = !(between && isHost && room.state === "lobby");
  ui.playAgain.hidden = !(isHost && room.state === "finished");
  ui.playAgainWait.hidden = isHost || room.state !== "finished";
  const host = room.players.find((p) => p.host);
  ui.waitHost.hidden = !(room.state === "lobby" && !isHost);
  ui.waitHost.textContent = host ? `Waiting for ${host.name} (the host) to start the game.` : "Waiting for a host.";
}

// The settings line in the header, and the host's settings form between games.
function renderSettings(room, me) {
  const s = room.settings || {};
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  if (ui.settingsLine && s.rounds) {
    ui.settingsLine.textContent = `${plural(s.rounds, "round")} of ${Math.round(s.seconds)} s · up to ${plural(s.max_players, "player")}`;
  }
  if (ui.privateBadge) ui.privateBadge.hidden = !s.private;
  const between = room.state === "lobby" || room.state === "finished";
  const show = Boolean(me?.host) && between;
  if (show && ui.settings.hidden) {
    // Filled in when the form appears, not while the host is editing it.
    ui.settingsSeconds.value = String(Math.round(s.seconds));
    ui.settingsPlayers.value = String(s.max_players);
    ui.settingsPrivate.checked = Boolean(s.private);
  }
  ui.settings.hidden = !show;
}

function askForAnotherName(reason) {
  connection.stop(reason);
  root.hidden = true;
  if (ui.rename) {
    ui.renameReason.textContent = reason;
    ui.rename.hidden = false;
    ui.rename.querySelector("input[name=name]").focus();
  }
}

function showNoGuess() {
  ui.guessDigit.textContent = "?";
  ui.guessNote.textContent = "Guesses appear as you draw";
  ui.guessInline.textContent = "";
  resetBars(ui.bars);
}

function showGuess(digit, probabilities, targetProbability) {
  ui.guessDigit.textContent = String(digit);
  ui.guessNote.textContent = `${percent(targetProbability)} sure it is a ${game.target}`;
  ui.guessInline.textContent = `Model: ${digit} · ${percent(probabilities[digit])}`;
  renderBars(ui.bars, probabilities, game.target);
}

function showOverlay(text, done = false) {
  ui.overlay.textContent = text;
  ui.overlay.classList.toggle("pad-overlay--done", done);
  ui.overlay.hidden = false;
}

function hideOverlay() {
  ui.overlay.hidden = true;
}

function say(text, isError = false) {
  ui.status.textContent = text || "";
  ui.status.classList.toggle("errorlist", Boolean(isError && text));
}

const REASONS = {
  reached: (r) => `recognised in ${r.seconds?.toFixed(1) ?? "?"} s`,
  done: () => "finished early",
  time: () => "out of time",
  disconnected: () => "disconnected",
  left: () => "left",
  kicked: () => "removed by the host",
  absent: () => "did not draw",
};

function showRoundEnd(message) {
  game.lastRoundEnd = message;
  game.finished = true;
  resetSending();
  pad.setEnabled(false);
  ui.done.disabled = true;
  showOverlay(message.final ? "Game over" : `Round ${message.round} is over`, true);
  ui.resultsTitle.textContent = `Round ${message.round} of ${message.rounds}: draw a ${message.target}`;
  game.endsAt = message.next_round_at;
  ui.results.hidden = false;
  ui.resultsGrid.replaceChildren(...message.results.map((r) => resultCard(r, message.target)));
  // Thumbnails are drawn once the cards are laid out and have a size.
  requestAnimationFrame(() => {
    for (const canvas of ui.resultsGrid.querySelectorAll("canvas[data-result-drawing]")) {
      const result = message.results.find((r) => r.player === canvas.dataset.resultDrawing);
      if (result?.drawing) renderDrawing(canvas, result.drawing);
    }
  });
}

function resultCard(result, target) {
  // An opted-out player's drawing was deleted when the round ended: say so
  // instead of showing an empty frame.
  const empty = () => result.drawing_deleted
    ? h("div", {class: "thumb thumb--deleted"}, "not kept")
    : h("div", {class: "thumb"});
  const input = result.input
    ? h("img", {class: "thumb thumb--pixels", src: result.input, alt: `What the model saw of ${result.name}'s drawing`, width: 28, height: 28})
    : empty();
  const guess = result.digit === null || result.digit === undefined
    ? "no guess"
    : result.probabilities
      ? `${result.digit} (${percent(result.probabilities[result.digit])})`
      : String(result.digit);
  return h("article", {class: "result", dataset: {player: result.player}},
    h("div", {class: "result__line"},
      h("span", {class: "result__name"}, result.name, result.player === game.me?.id ? " (you)" : ""),
      h("span", {class: "result__points"}, `+${result.points}`)),
    h("div", {class: "result__images"},
      h("figure", {},
        result.drawing
          ? h("canvas", {class: "thumb", dataset: {resultDrawing: result.player}, role: "img", "aria-label": `${result.name}'s drawing`})
          : empty(),
        h("figcaption", {}, "drawing")),
      h("figure", {}, input, h("figcaption", {}, "model input (28×28)"))),
    h("div", {class: "result__line"},
      h("span", {}, `Guess: ${guess}`),
      h("span", {class: "muted"}, `${percent(result.target_probability)} for ${target}`)),
    h("div", {class: "result__line muted small"},
      h("span", {}, (REASONS[result.reason] || (() => result.reason))(result)),
      h("span", {}, `total ${result.score}`)));
}

function showGameOver(message) {
  ui.final.hidden = false;
  // Ranks come from the server: equal scores share one.
  ui.leaderboard.replaceChildren(...message.leaderboard.map((row) => h("li", {
    dataset: {player: row.player, rank: String(row.rank)},
    class: [row.rank === 1 ? "is-first" : "", row.gone ? "is-gone" : ""].join(" ").trim(),
  },
  h("span", {class: "rank", "aria-label": `rank ${row.rank}`}, String(row.rank)),
  h("span", {class: "name"}, row.name, row.player === game.me?.id ? " (you)" : "", row.gone ? " · left" : ""),
  h("span", {class: "score"}, String(row.score)))));
  ui.nextRound.textContent = "final round";
  root.dataset.state = "finished";
  ui.final.scrollIntoView({behavior: "smooth", block: "nearest"});
}

// -- the clock ----------------------------------------------------------------

function tick() {
  const state = game.room?.state;
  if (state === "playing" && game.endsAt) {
    const left = Math.max(0, game.endsAt - connection.serverNow());
    ui.timer.textContent = left < 10000 ? `${(left / 1000).toFixed(1)} s` : `${Math.ceil(left / 1000)} s`;
    ui.timer.classList.toggle("is-low", left < 5000);
    ui.timerFill.style.transform = `scaleX(${Math.min(1, left / (game.seconds * 1000))})`;
  } else {
    ui.timer.textContent = "–";
    ui.timer.classList.remove("is-low");
    ui.timerFill.style.transform = "scaleX(0)";
  }
  if (state === "results" && game.endsAt) {
    const left = Math.max(0, Math.ceil((game.endsAt - connection.serverNow()) / 1000));
    ui.nextRound.textContent = `next round in ${left} s`;
  }
}
setInterval(tick, 100);

// -- buttons ------------------------------------------------------------------

ui.start.addEventListener("click", () => {
  connection.send({type: "start", rounds: Number(ui.startRounds.value)});
});
ui.settingsSave.addEventListener("click", () => {
  const change = {type: "settings", private: ui.settingsPrivate.checked,
    seconds: Number(ui.settingsSeconds.value)};
  if (!ui.settingsPlayers.disabled) change.max_players = Number(ui.settingsPlayers.value);
  if (connection.send(change)) say("Settings saved.");
});
ui.playAgain.addEventListener("click", () => {
  connection.send({type: "start"});
});
ui.leave.addEventListener("click", () => {
  game.leaving = true;
  connection.leave();
  // If the server does not close the socket promptly, go anyway.
  setTimeout(() => {
    location.href = config.homeUrl;
  }, 1500);
});
ui.copyLink.addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(ui.shareUrl.value);
    ui.copyLink.textContent = "Copied";
  } catch {
    ui.shareUrl.select();
  }
});

showNoGuess();
tick();
connection.connect();

// A handle for the browser console (and the end-to-end test) to look inside.
window.digitGame = {connection, pad, state: game};
