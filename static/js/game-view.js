// How the room page shows the game: its elements, the status line, the
// overlay on the canvas, the live guess, the players, the host's controls and
// settings, the clock and the connection badge. It reads the game's state
// (game-state.js) and changes none of it; the round's results are drawn by
// game-results.js, the final standings by game-standings.js.

import {withArticle} from "./article.js";
import {h, renderBars, resetBars} from "./game-ui.js";
import {showResults} from "./game-results.js";
import {showStandings} from "./game-standings.js";
import {percent} from "./percent.js";

export class RoomView {
  constructor(root) {
    this.root = root;
    const $ = (selector) => root.querySelector(selector);
    this.ui = {
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
      winner: $("[data-winner]"),
      podium: $("[data-podium]"),
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
      sound: $("[data-sound]"),
      countdown: $("[data-countdown]"),
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
    this._countdown = null;
    this._noteTimer = null;
  }

  say(text, isError = false) {
    const {status} = this.ui;
    clearTimeout(this._noteTimer);
    status.textContent = text || "";
    status.classList.toggle("errorlist", Boolean(isError && text));
  }

  /** A passing note ("Reconnected"): shown for `ms`, then cleared unless something else was said. */
  note(text, ms = 6000) {
    this.say(text);
    this._noteTimer = setTimeout(() => {
      if (this.ui.status.textContent === text) this.say("");
    }, ms);
  }

  showOverlay(text, done = false) {
    const {overlay} = this.ui;
    overlay.textContent = text;
    overlay.classList.toggle("pad-overlay--done", done);
    overlay.hidden = false;
  }

  hideOverlay() {
    this.ui.overlay.hidden = true;
  }

  showNoGuess() {
    const {ui} = this;
    ui.guessDigit.textContent = "?";
    ui.guessNote.textContent = "Guesses appear as you draw";
    ui.guessInline.textContent = "";
    resetBars(ui.bars);
  }

  showGuess(digit, probabilities, targetProbability, target) {
    const {ui} = this;
    ui.guessDigit.textContent = String(digit);
    ui.guessNote.textContent = `${percent(targetProbability)} sure it is ${withArticle(target)}`;
    ui.guessInline.textContent = `Model: ${digit} · ${percent(probabilities[digit])}`;
    renderBars(ui.bars, probabilities, target);
  }

  /** The connection badge: connected, offline with a countdown, closed, or (re)connecting. */
  showConnection({state, retryAt}) {
    this.root.dataset.connectionState = state;
    const badge = this.ui.connection;
    badge.classList.remove("badge--good", "badge--warn", "badge--bad");
    clearInterval(this._countdown);
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
      this._countdown = setInterval(tick, 500);
    } else if (state === "closed") {
      badge.classList.add("badge--bad");
      badge.textContent = "disconnected";
    } else {
      badge.classList.add("badge--warn");
      badge.textContent = state === "reconnecting" ? "reconnecting…" : "connecting…";
    }
  }

  /** A button after the status line to take the seat back from another tab. */
  offerToPlayHere(onclick) {
    this.ui.status.append(" ",
      h("button", {type: "button", class: "button--small", onclick}, "Play in this tab"));
  }

  /** The server refused the name: the page gives way to the form asking for another. */
  askForAnotherName(reason) {
    const {ui} = this;
    this.root.hidden = true;
    if (ui.rename) {
      ui.renameReason.textContent = reason;
      ui.rename.hidden = false;
      ui.rename.querySelector("input[name=name]").focus();
    }
  }

  showRoundStart(message) {
    const {ui} = this;
    ui.done.disabled = true;
    ui.targetDigit.textContent = String(message.target);
    ui.targetLabel.textContent = `Round ${message.round} of ${message.rounds}`;
    ui.targetText.textContent = `Draw ${withArticle(message.target)}`;
    ui.roundLabel.textContent = `Round ${message.round} of ${message.rounds}`;
    this.foldResults(message.round);
    ui.final.hidden = true;
    this.hideOverlay();
    this.showNoGuess();
    this.say("");
  }

  showLobby(isHost) {
    this.showOverlay(isHost ? "Start the game when everyone is here" : "Waiting for the host to start the game");
    this.ui.targetText.textContent = "Waiting for the game to start";
  }

  /**
   * What every `room` snapshot changes: the round line, the settings, the
   * players and the host's controls. `me`: my seat in the snapshot;
   * `onKick(id)`: the host removes a player.
   */
  showRoom(room, game, me, {onKick, started}) {
    this.ui.roundLabel.textContent = room.round ? `Round ${room.round} of ${room.rounds}` : "Lobby";
    this.showSettings(room, me);
    this.showPlayers(room, game, onKick);
    this.showHostControls(room, me);
    if (started) this.ui.final.hidden = true;
  }

  showPlayers(room, game, onKick) {
    const {ui} = this;
    const showFinished = room.state === "playing" || room.state === "results";
    // A class's teacher (its host) does not draw: not counted among those drawing.
    const teacher = room.settings?.classroom ? room.host : null;
    const present = room.players.filter((p) => !p.gone && p.id !== teacher);
    const done = present.filter((p) => p.finished).length;
    ui.finishedCount.textContent = room.state === "playing" ? `· ${done} of ${present.length} finished` : "";
    ui.players.replaceChildren(...room.players.map((p) => {
      const badges = [];
      if (p.id === game.me?.id) badges.push(h("span", {class: "badge"}, "you"));
      if (p.host) badges.push(h("span", {class: "badge badge--accent"}, teacher ? "teacher" : "host"));
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
              onKick(p.id);
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

  showHostControls(room, me) {
    const {ui} = this;
    const between = room.state === "lobby" || room.state === "finished";
    const isHost = Boolean(me?.host);
    ui.hostControls.hidden = !(between && isHost && room.state === "lobby");
    ui.playAgain.hidden = !(isHost && room.state === "finished");
    ui.playAgainWait.hidden = isHost || room.state !== "finished";
    const host = room.players.find((p) => p.host);
    ui.waitHost.hidden = !(room.state === "lobby" && !isHost);
    const role = room.settings?.classroom ? "the teacher" : "the host";
    ui.waitHost.textContent = host ? `Waiting for ${host.name} (${role}) to start the game.` : `Waiting for ${role}.`;
  }

  // The settings line in the header, and the host's settings form between games.
  showSettings(room, me) {
    const {ui} = this;
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

  /**
   * A round's results stay open until the next round starts; then they fold
   * into a "last round" line above the canvas that the player may open again.
   * A new game's first round has no last round to show.
   */
  showRoundEnd(message, myId) {
    const {ui} = this;
    this.showOverlay(message.final ? "Game over" : `Round ${message.round} is over`, true);
    ui.resultsTitle.textContent = `Round ${message.round} of ${message.rounds}: draw ${withArticle(message.target)}`;
    ui.nextRound.textContent = "";
    ui.results.hidden = false;
    ui.results.open = true;
    showResults(ui.resultsGrid, message, myId);
    // They are seen at once from the top of the page; a player scrolled down
    // to the canvas is brought up to them.
    ui.results.scrollIntoView({behavior: "smooth", block: "nearest"});
  }

  foldResults(round) {
    const {ui} = this;
    ui.results.open = false;
    ui.results.hidden = round <= 1 || ui.resultsGrid.childElementCount === 0;
    ui.nextRound.textContent = "last round";
  }

  showGameOver(message, myId) {
    const {ui} = this;
    ui.final.hidden = false;
    showStandings({winner: ui.winner, podium: ui.podium, list: ui.leaderboard},
      message.leaderboard, myId);
    ui.nextRound.textContent = "final round";
    this.root.dataset.state = "finished";
    ui.final.scrollIntoView({behavior: "smooth", block: "nearest"});
  }

  /** The round's clock, and between rounds the countdown to the next; `now` on the server's clock. */
  showClock(game, now) {
    const {ui} = this;
    const state = game.room?.state;
    if (state === "playing" && game.endsAt) {
      const left = Math.max(0, game.endsAt - now);
      ui.timer.textContent = left < 10000 ? `${(left / 1000).toFixed(1)} s` : `${Math.ceil(left / 1000)} s`;
      ui.timer.classList.toggle("is-low", left < 5000);
      ui.timerFill.style.transform = `scaleX(${Math.min(1, left / (game.seconds * 1000))})`;
    } else {
      ui.timer.textContent = "–";
      ui.timer.classList.remove("is-low");
      ui.timerFill.style.transform = "scaleX(0)";
    }
    if (state === "results" && game.endsAt) {
      const left = Math.max(0, Math.ceil((game.endsAt - now) / 1000));
      ui.nextRound.textContent = `next round in ${left} s`;
    }
  }
}
