// What the room page knows of the game: the latest `room` snapshot, the round
// being played and whether my part of it is over. Plain data and the rules
// that read and change it, no page elements, so that showing the room
// (game-view.js) and answering the server (game.js) share one account of it.

export function createGame(snapshot) {
  return {
    me: null, // {id, name, host, opt_out}
    room: snapshot, // the latest `room` snapshot
    gameId: null,
    round: 0,
    target: null,
    endsAt: null, // server clock, ms
    seconds: snapshot?.settings?.seconds || 20,
    roundStartLocal: null,
    finished: false, // my round is over
    seq: 0, // of the latest drawing sent this round
    shownSeq: -1, // of the guess shown
    lastRoundEnd: null,
    leaving: false,
  };
}

export function canDraw(game) {
  return game.room?.state === "playing" && !game.finished && game.round > 0;
}

/**
 * Take a `room` snapshot; returns my seat in it (undefined when it has none
 * of mine), whose host flag, name and opt-out now hold for me too.
 */
export function takeSnapshot(game, room) {
  game.room = room;
  game.seconds = room.settings?.seconds || game.seconds;
  const me = room.players.find((p) => p.id === game.me?.id);
  if (me) game.me = {...game.me, host: me.host, name: me.name, opt_out: me.opt_out};
  return me;
}

// The `room` snapshot and `round_start` both announce a round; start it once.
export function isStarted(game, message) {
  return message.game === game.gameId && message.round === game.round;
}

/** A round starts (`round_start`, or a snapshot of one already under way). */
export function enterRound(game, message, clockOffset) {
  game.gameId = message.game;
  game.round = message.round;
  game.target = message.target;
  game.endsAt = message.ends_at;
  game.seconds = message.seconds || game.seconds;
  game.roundStartLocal = message.ends_at - game.seconds * 1000 - clockOffset;
  game.finished = false;
  game.seq = 0;
  game.shownSeq = -1;
  if (game.room && (game.room.game !== message.game || game.room.round !== message.round)) {
    // Until the round's own snapshot comes, a copy of the last one with
    // nobody finished yet and, in a new game's first round, no points yet:
    // what the round's snapshot will show, so that a `player_finished` that
    // comes before that snapshot can be marked on it.
    const fresh = message.round === 1;
    game.room = {...game.room, state: "playing", game: message.game, round: message.round,
      target: message.target,
      players: game.room.players.map((p) => ({...p, finished: false, score: fresh ? 0 : p.score}))};
  }
}

/** Whether a guess is the newest yet (then it is the one shown). */
export function takeGuess(game, message) {
  if ((message.seq ?? 0) < game.shownSeq) return false;
  game.shownSeq = message.seq ?? game.shownSeq;
  return true;
}
