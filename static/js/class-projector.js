// The projector page of a class: the teacher's seat in the room, over the
// room's WebSocket like every player (game-connection.js, docs/protocol.md),
// but drawing nothing. It shows the join code and QR code, each student's
// drawing live (class-grid.js), and after each round and the game what the
// teacher's connection alone is sent (class-report.js).

import {withArticle} from "./article.js";
import {ClassGrid} from "./class-grid.js";
import {showRound, showSummary} from "./class-report.js";
import {GameConnection} from "./game-connection.js";
import {showStandings} from "./game-standings.js";
import {RoundFinishes} from "./round-finishes.js";
import {classTeach} from "./teach/class-teach.js";

const config = JSON.parse(document.getElementById("class-config").textContent);
const root = document.querySelector("[data-projector]");
const $ = (selector) => root.querySelector(selector);
const ui = {
  studentCount: $("[data-student-count]"),
  connection: $("[data-connection]"),
  controls: $("[data-teacher-controls]"),
  rounds: $("[data-class-rounds]"),
  start: $("[data-class-start]"),
  again: $("[data-class-again]"),
  status: $("[data-status]"),
  targetDigit: $("[data-target-digit]"),
  roundLabel: $("[data-round-label]"),
  targetText: $("[data-target-text]"),
  finishedCount: $("[data-finished-count]"),
  timer: $("[data-timer]"),
  timerFill: $("[data-timer-fill]"),
  results: $("[data-class-results]"),
  resultsTitle: $("[data-class-results-title]"),
  counts: $("[data-class-counts]"),
  wrong: $("[data-class-wrong]"),
  noWrong: $("[data-class-no-wrong]"),
  matrix: $("[data-class-matrix]"),
  matrixRounds: $("[data-matrix-rounds]"),
  final: $("[data-class-final]"),
  winner: $("[data-winner]"),
  podium: $("[data-podium]"),
  leaderboard: $("[data-leaderboard]"),
  summary: $("[data-class-summary]"),
  summaryCount: $("[data-summary-count]"),
  summaryDigits: $("[data-summary-digits]"),
  samples: $("[data-summary-samples]"),
  learnLink: $("[data-learn-link]"),
  reviewLink: $("[data-review-link]"),
};

const grid = new ClassGrid($("[data-class-grid]"), $("[data-grid-empty]"));
// After a game, the teacher may teach the class's copy from its drawings.
const teach = classTeach($("[data-class-teach]"));
ui.exclusions = teach.exclusions;
const state = {me: null, room: config.snapshot, game: null, target: null, round: 0, endsAt: null,
  seconds: config.snapshot.settings.seconds, revision: config.snapshot.revision};
const finishes = new RoundFinishes();

function say(text, isError = false) {
  ui.status.textContent = text || "";
  ui.status.classList.toggle("errorlist", Boolean(isError && text));
}

const students = (room) => room.players.filter((p) => !p.gone && p.id !== room.host);

function applyRoom(snapshot) {
  // The server sends a connection only snapshots newer than its last
  // (docs/protocol.md, `room`); the page's own, rendered with the HTML, may
  // be newer than the first the socket brings. An older one would drop the
  // students who joined since.
  if (snapshot.revision < state.revision) return;
  const room = finishes.over(snapshot);
  state.revision = room.revision;
  state.room = room;
  root.dataset.state = room.state;
  const seated = students(room);
  const max = room.settings.max_players;
  ui.studentCount.textContent = `${seated.length} of ${max} student${max === 1 ? "" : "s"}`;
  grid.showStudents(seated);
  const isTeacher = state.me !== null && room.host === state.me.id;
  ui.controls.hidden = !(isTeacher && room.state === "lobby");
  ui.again.hidden = !(isTeacher && room.state === "finished");
  teach.show(isTeacher && room.state === "finished");
  if (room.state === "playing") {
    const done = seated.filter((p) => p.finished).length;
    ui.finishedCount.textContent = `${done} of ${seated.length} finished`;
    if (room.round !== state.round) startRound(room);
    state.endsAt = room.ends_at;
  } else {
    ui.finishedCount.textContent = "";
    state.endsAt = room.state === "results" ? room.ends_at : null;
  }
}

function startRound(message) {
  // A new game: the drawings left out belonged to the last one.
  if (message.round === 1) teach.exclusions.clear();
  state.game = message.game;
  state.round = message.round;
  state.target = message.target;
  state.endsAt = message.ends_at;
  grid.reset();
  ui.targetDigit.textContent = String(message.target);
  ui.roundLabel.textContent = `Round ${message.round} of ${message.rounds}`;
  ui.targetText.textContent = `Everyone draws ${withArticle(message.target)}`;
  ui.results.hidden = true;
  ui.final.hidden = true;
  ui.summary.hidden = true;
}

const handlers = {
  welcome(message) {
    state.me = message.you;
    if (!message.you.host) {
      say("Another screen is this class's teacher: this one only watches.", true);
    }
    applyRoom(message.room);
  },
  room: applyRoom,
  round_start: startRound,
  class_drawing(message) {
    if (message.round === state.round) grid.update(message, state.target);
  },
  player_finished(message) {
    if (message.round !== state.round) return;
    grid.finished(message);
    // No snapshot follows a finish: the count of those finished takes it
    // from here, once the round's snapshot has come (the round's start
    // comes first, without one).
    finishes.heard(state.game, message);
    if (state.room?.state === "playing" && state.room.round === message.round) applyRoom(state.room);
  },
  round_end(message) {
    grid.ended(message.results, message.target);
    state.endsAt = message.next_round_at;
    ui.targetText.textContent = message.final ? "That was the last round." : "Results: the next round starts soon.";
  },
  class_round(message) {
    showRound(ui, message);
  },
  game_over(message) {
    ui.final.hidden = false;
    showStandings({winner: ui.winner, podium: ui.podium, list: ui.leaderboard},
      message.leaderboard, null);
  },
  class_summary(message) {
    showSummary(ui, message);
  },
  error(message) {
    say(message.message || message.code, true);
  },
};

const connection = new GameConnection({
  url: `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}${config.wsPath}`,
  code: config.code,
  name: config.name,
  onMessage: (message) => handlers[message.type]?.(message),
  onState: showConnection,
});

function showConnection({state: connectionState, reason}) {
  const badge = ui.connection;
  badge.classList.remove("badge--good", "badge--warn", "badge--bad");
  const good = connectionState === "connected";
  badge.classList.add(good ? "badge--good" : connectionState === "closed" ? "badge--bad" : "badge--warn");
  badge.textContent = good ? "connected" : connectionState === "closed" ? "disconnected" : "connecting…";
  if (connectionState === "closed" && reason) say(reason, true);
}

function tick() {
  const now = connection.serverNow();
  const playing = state.room?.state === "playing" && state.endsAt;
  const left = playing ? Math.max(0, state.endsAt - now) : 0;
  ui.timer.textContent = playing ? `${Math.ceil(left / 1000)} s` : "–";
  ui.timerFill.style.transform = `scaleX(${playing ? Math.min(1, left / (state.seconds * 1000)) : 0})`;
}
setInterval(tick, 250);

ui.start.addEventListener("click", () => {
  say("");
  connection.send({type: "start", rounds: Number(ui.rounds.value)});
});
ui.again.addEventListener("click", () => {
  say("");
  connection.send({type: "start"});
});

connection.connect();

// A handle for the browser console (and the end-to-end test) to look inside.
window.digitClass = {connection, state, grid, teach};
