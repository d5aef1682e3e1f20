// Who has finished the round being played, as the room's `player_finished`
// messages said.
//
// The server sends no `room` snapshot after a player's finish: their
// `player_finished` carries all a finish changes in it, the `finished` flag
// and the new score (docs/protocol.md). A page keeps the finishes it heard
// in the round and lays them over each snapshot of that round, so that a
// snapshot read before a finish and delivered after it (the room's
// messages come from several connections and server processes) does not
// show the player drawing again with their old score. A later snapshot
// shows the finish itself.

const roundKey = (game, round) => `${game}:${round}`;

export class RoundFinishes {
  constructor() {
    this.key = null;
    this.scores = new Map(); // player id -> score after their finish
  }

  /** A `player_finished` of round `message.round` of game `game`. */
  heard(game, message) {
    const key = roundKey(game, message.round);
    if (key !== this.key) {
      this.key = key;
      this.scores.clear();
    }
    this.scores.set(message.player, message.score);
  }

  /** The snapshot, with the finishes heard in its round marked. */
  over(room) {
    if (!room || !this.scores.size || roundKey(room.game, room.round) !== this.key) return room;
    return {
      ...room,
      players: room.players.map((p) => (this.scores.has(p.id)
        // A game's scores only grow: the higher one is the newer.
        ? {...p, finished: true, score: Math.max(p.score, this.scores.get(p.id))}
        : p)),
    };
  }
}
