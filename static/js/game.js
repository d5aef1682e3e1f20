// The room page: canvas, live guesses, players, timer, results and leaderboard,
// all driven by the room's WebSocket (see game-connection.js and docs/protocol.md).
// This module puts the page together and answers the server's messages: what
// the page knows is kept in game-state.js, shown by game-view.js and
// game-results.js, and the drawings go out through game-drawings.js.

import {ClassGrid} from "./class-grid.js";
import {Countdown} from "./game-countdown.js";
import {bindPadControls, DrawingPad} from "./drawing-pad.js";
import {DrawingSender} from "./game-drawings.js";
import {Gallery} from "./game-gallery.js";
import {GameConnection, REPLACED_CLOSES} from "./game-connection.js";
import {canDraw, createGame, enterRound, isStarted, takeGuess, takeSnapshot} from "./game-state.js";
import {shareLabel, shareLink} from "./game-share.js";
import {Sounds} from "./game-sounds.js";
import {RoomView} from "./game-view.js";
import {percent} from "./percent.js";
import {rememberChoice} from "./remembered-choice.js";
import {RoundFinishes} from "./round-finishes.js";

const OPT_OUT_KEY = "digit-game-opt-out";
// About ten live guesses a second, as the protocol asks.
const DRAW_EVERY_MS = 100;
// A drawing still unanswered after this long no longer holds the next one back.
const ANSWER_TIMEOUT_MS = 5000;

const config = JSON.parse(document.getElementById("room-config").textContent);
const root = document.querySelector("[data-room]");
const view = new RoomView(root);
const {ui} = view;
const say = (text, isError) => view.say(text, isError);

// Join refusals about the name: the player picks another one (a page form).
const NAME_ERRORS = ["bad_name", "name_taken", "name_reserved"];

const game = createGame(config.snapshot);
const finishes = new RoundFinishes();

// -- preferences --------------------------------------------------------------

rememberChoice(ui.optOut, OPT_OUT_KEY, (optOut) => {
  connection.send({type: "opt_out", value: optOut});
  say(optOut ? "Your drawings will not be kept." : "Your drawings will be kept to train the model.");
});

// Sounds: off until turned on, then remembered (game-sounds.js).
const sounds = new Sounds();
ui.sound.checked = sounds.enabled;
ui.sound.addEventListener("change", () => sounds.setEnabled(ui.sound.checked));
// The last seconds of my round beep once a second: the second last beeped.
let hurriedAt = null;
const HURRY_SECONDS = 5;

const countdown = new Countdown(ui.countdown);

// -- the canvas ---------------------------------------------------------------

const pad = new DrawingPad(root.querySelector("[data-pad]"), {
  lineWidth: 16,
  onChange: (drawing, reason) => {
    ui.done.disabled = !canDraw(game) || drawing.strokes.length === 0;
    if (!canDraw(game) || drawing.strokes.length === 0) {
      drawings.drop();
      if (drawing.strokes.length === 0) view.showNoGuess();
      return;
    }
    drawings.changed({now: reason === "end", grew: reason !== "undo" && reason !== "clear"});
  },
});
bindPadControls(pad, root);
pad.setEnabled(false);

ui.done.addEventListener("click", () => {
  if (!canDraw(game)) return;
  drawings.sendFinal();
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

const drawings = new DrawingSender({
  pad, connection, game, everyMs: DRAW_EVERY_MS, answerTimeoutMs: ANSWER_TIMEOUT_MS,
});

// The other players drawing, live (`live_drawings`; not in solo rooms and classes).
const liveSection = document.querySelector("[data-live-others]");
const others = liveSection
  ? new ClassGrid(liveSection.querySelector("[data-live-grid]"), liveSection.querySelector("[data-live-empty]"))
  : null;

const gallery = new Gallery(document.querySelector("[data-gallery]"),
  (gameId, round, digit) => connection.send({type: "correct", game: gameId, round, digit}));

function showConnection(change) {
  view.showConnection(change);
  if (change.state !== "closed") return;
  pad.setEnabled(false);
  if (game.leaving) {
    location.href = config.homeUrl;
    return;
  }
  say(change.reason || "Disconnected.", true);
  if (change.reason) view.showOverlay(change.reason);
  if (REPLACED_CLOSES.includes(change.code)) {
    view.offerToPlayHere(() => {
      say("");
      connection.attempt = 0;
      connection.connect();
    });
  }
}

const FINISHED = {
  reached: "Recognised!",
  done: "Done.",
  time: "Time is up.",
  disconnected: "Your round ended while you were offline.",
  left: "You left.",
  kicked: "You were removed by the host.",
};

const handlers = {
  welcome(message) {
    // This page had the seat already (a dropped connection), or it is a new
    // page of a returning player (a reload, the link opened again, another tab).
    const reconnected = game.me !== null;
    const roundBefore = [game.gameId, game.round];
    game.me = message.you;
    ui.myName.textContent = message.you.name;
    if (message.you.opt_out !== ui.optOut.checked) {
      connection.send({type: "opt_out", value: ui.optOut.checked});
    }
    say("");
    applyRoom(message.room);
    // A round this page had not seen yet: what the player drew in it before
    // comes back on the canvas. One the page was playing keeps the pad as it is.
    if (game.gameId !== roundBefore[0] || game.round !== roundBefore[1]) restoreDrawing(message.drawing);
    drawings.rejoined();
    if (message.rejoined) {
      view.note(reconnected ? "Reconnected to your seat." : "Welcome back: your seat and your points are still yours.");
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
    drawings.answered(message.seq);
    if (!takeGuess(game, message)) return;
    view.showGuess(message.digit, message.probabilities, message.target_probability, game.target);
    if (message.reached) sounds.play("success");
    if (message.reached) finishMine(`Recognised! The model is ${percent(message.target_probability)} sure.`);
  },
  // From a server process of an older release, during an upgrade.
  live_drawing(message) {
    if (message.round === game.round && message.player !== game.me?.id) others?.update(message, game.target);
  },
  live_drawings(message) {
    // The room's newest drawings together, this player's own among them
    // (its canvas shows it already).
    if (message.round !== game.round) return;
    for (const drawing of message.drawings) {
      if (drawing.player !== game.me?.id) others?.update({round: message.round, ...drawing}, game.target);
    }
  },
  player_finished(message) {
    if (message.round !== game.round) return;
    others?.finished(message);
    if (message.player === game.me?.id) {
      // A drawing whose guess went out `held` (its write waited on the
      // database) reaches the target when the write lands: this message is
      // then the first news of it. A guess that said `reached` played the
      // sound already and finished the round on this page.
      if (message.reason === "reached" && !game.finished) sounds.play("success");
      const why = FINISHED[message.reason] || "Your round is over.";
      finishMine(`${why} +${message.points} points`);
    }
    // No snapshot follows a finish: the scoreboard takes it from here, on
    // the round's snapshot or the round start's copy of the last one.
    finishes.heard(game.gameId, message);
    if (game.room?.game === game.gameId && game.room.round === game.round) applyRoom(game.room);
  },
  round_end(message) {
    endRound(message);
  },
  game_over(message) {
    view.showGameOver(message, game.me?.id);
  },
  gallery(message) {
    gallery.show(message, game.me?.id);
  },
  corrected(message) {
    gallery.corrected(message);
  },
  error(message) {
    if (message.for === "join" && NAME_ERRORS.includes(message.code)) {
      connection.stop(message.message || message.code);
      view.askForAnotherName(message.message || message.code);
      return;
    }
    if (message.for === "draw") drawings.refused(message.code);
    if (message.for === "correct") {
      gallery.refused(message.message || message.code);
      return;
    }
    // A draw after the round ended is expected now and then, and one added to
    // a drawing the server lost goes again whole: nothing to show.
    if (["not_playing", "wrong_round", "already_finished", "stale_base"].includes(message.code)
      && message.for === "draw") return;
    say(message.message || message.code, true);
  },
};

function handle(message) {
  handlers[message.type]?.(message);
}

// -- applying server state ----------------------------------------------------

function applyRoom(snapshot) {
  const room = finishes.over(snapshot);
  const previous = game.room;
  const me = takeSnapshot(game, room);
  root.dataset.state = room.state;
  if (room.rule) ui.rule.textContent = room.rule;

  if (room.state === "playing") {
    // Reconnected in the middle of a round: catch up without a round_start.
    if (room.round !== game.round || room.game !== game.gameId) {
      startRound({game: room.game, round: room.round, rounds: room.rounds, target: room.target,
        ends_at: room.ends_at, seconds: game.seconds}, {catchingUp: true});
    }
    if (me?.finished && !game.finished) finishMine("Your round is over.");
    game.endsAt = room.ends_at;
  } else {
    if (room.state === "lobby") {
      game.round = 0;
      view.showLobby(me?.host);
    }
    if (room.state === "results") game.endsAt = room.ends_at;
    if (room.state === "finished" || room.state === "lobby") game.endsAt = null;
    pad.setEnabled(false);
    ui.done.disabled = true;
  }

  if (others) {
    const seated = room.players.filter((p) => p.id !== game.me?.id && !p.gone);
    others.showStudents(seated);
    liveSection.hidden = false;
  }
  view.showRoom(room, game, me, {
    onKick: (player) => connection.send({type: "kick", player}),
    started: previous?.state !== room.state && room.state === "playing",
  });
}

/**
 * A round starts (`round_start`), or the page catches up with one already
 * under way (`catchingUp`: a reload, a reconnect, a late join), which began
 * without this page: no "Go!" and no start sound then.
 */
function startRound(message, {catchingUp = false} = {}) {
  if (isStarted(game, message)) {
    game.endsAt = message.ends_at;
    return;
  }
  enterRound(game, message, connection.offset);
  root.dataset.state = "playing";
  root.dataset.round = String(message.round);
  root.dataset.finished = "false";
  drawings.reset();
  pad.clear();
  pad.setEnabled(true);
  if (message.round === 1) gallery.hide();
  others?.reset();
  hurriedAt = null;
  if (!catchingUp) {
    countdown.go();
    sounds.play("start");
  }
  view.showRoundStart(message);
}

/** Put the player's drawing of the round under way back on the canvas, to go on with. */
function restoreDrawing(drawing) {
  if (!drawing || !canDraw(game) || !pad.isEmpty()) return;
  // Its point times count from the round's start, as the new ones will.
  pad.load(drawing, {startedAt: game.roundStartLocal});
  ui.done.disabled = pad.isEmpty();
}

function finishMine(text) {
  game.finished = true;
  drawings.reset();
  pad.setEnabled(false);
  ui.done.disabled = true;
  view.showOverlay(text, true);
  root.dataset.finished = "true";
}

function endRound(message) {
  game.lastRoundEnd = message;
  others?.ended(message.results, message.target);
  game.finished = true;
  drawings.reset();
  pad.setEnabled(false);
  ui.done.disabled = true;
  game.endsAt = message.next_round_at;
  view.showRoundEnd(message, game.me?.id);
}

// -- the clock ----------------------------------------------------------------

function tick() {
  const now = connection.serverNow();
  view.showClock(game, now);
  const state = game.room?.state;
  countdown.update(state === "results" && game.endsAt ? game.endsAt - now : null);
  if (state === "playing" && game.endsAt && canDraw(game)) {
    const second = Math.ceil((game.endsAt - now) / 1000);
    if (second > 0 && second <= HURRY_SECONDS && second !== hurriedAt) {
      hurriedAt = second;
      sounds.play("hurry");
    }
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
// The phone's share sheet where there is one, else the link is copied.
ui.copyLink.textContent = shareLabel();
ui.copyLink.addEventListener("click", async () => {
  const done = await shareLink(ui.shareUrl.value, `Draw the digit with me: room ${config.code}`);
  if (done === "copied") ui.copyLink.textContent = "Copied";
  if (done === "failed") ui.shareUrl.select();
});

view.showNoGuess();
tick();
connection.connect();

// A handle for the browser console (and the end-to-end test) to look inside.
window.digitGame = {connection, pad, state: game, drawings, gallery, others, sounds, countdown};
